/**
 * Plans and helpers shared by the host tests.
 */
import { HardwayConfig, parseConfig } from "../../components/config/schema";
import { AddressPlan, addressPlan } from "../../components/network/addressPlan";

export function planFor(raw: Readonly<Record<string, unknown>> = {}): AddressPlan {
  const config: HardwayConfig = parseConfig(raw, { os: "linux", cpu: "x64" });
  return addressPlan(config);
}
