/**
 * What a host crash, a reboot or a lost VM does to a stack, done by hand inside the run's
 * namespaces: QEMU processes killed, the bridge, the NAT table, the pod routes and dnsmasq gone.
 */
import { bridgeName, natTableName } from "../../components/host/layout";
import { runCommand } from "../smoke/run";

/** Every QEMU of the stack, killed at once. */
export async function killVms(stackName: string, node = ""): Promise<void> {
  await runCommand("pkill", ["-KILL", "-f", `qemu-system-x86_64 -name ${stackName}-${node}`]);
  await new Promise((resolve) => setTimeout(resolve, 2000));
}

/** A host reboot: the VMs die, and with them everything the host kept only in memory. */
export async function simulateReboot(stackName: string, clusterCidr: string): Promise<void> {
  await killVms(stackName);
  await runCommand("ip", ["link", "delete", bridgeName(stackName)]);
  await runCommand("nft", ["delete", "table", "ip", natTableName(stackName)]);
  await runCommand("ip", ["route", "flush", "root", clusterCidr]);
  await runCommand("pkill", ["-KILL", "-f", `dnsmasq --conf-file=/var/lib/hardway/${stackName}/`]);
}
