import { defaultVersions } from "../../components/config/defaults";
import {
  KUBERNETES_END_OF_LIFE,
  minorOf,
  supportedOn,
} from "../../components/config/kubernetesSupport";

describe("Kubernetes support window", () => {
  it("pins a Kubernetes minor that is still supported today", () => {
    const today = new Date();
    const minor = minorOf(defaultVersions.kubernetes);
    expect(KUBERNETES_END_OF_LIFE).toHaveProperty([minor]);
    if (!supportedOn(defaultVersions.kubernetes, today)) {
      throw new Error(
        `Kubernetes ${minor} reached end of life on ${KUBERNETES_END_OF_LIFE[minor]}; move defaultVersions to a supported minor`,
      );
    }
  });

  it("counts the end-of-life day itself as supported, and the next day not", () => {
    expect(supportedOn("1.36.5", new Date("2027-06-28T23:59:00Z"))).toBe(true);
    expect(supportedOn("1.36.5", new Date("2027-06-29T00:00:00Z"))).toBe(false);
    expect(supportedOn("1.33.4", new Date("2026-01-01T00:00:00Z"))).toBe(false); // not in the table
  });
});
