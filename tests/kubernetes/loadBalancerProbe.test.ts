/**
 * The load balancer's probe on a real kube-apiserver: the path ldirectord asks on emulated
 * guests leaves out exactly the etcd checks it names (a name the server does not know would be
 * ignored with a warning, and the probe would still fail on a slow etcd), and keeps `shutdown`,
 * which a stopping server fails first.
 */
import { EMULATED_CHECKS, readyzRequest } from "../../components/kubernetes/loadBalancer";
import { describeIfAvailable } from "../harness/prerequisites";
import { ApiServerLab, apiServerLabMissing } from "./apiServerLab";
import { plan as planFor } from "./fixtures";

describeIfAvailable(apiServerLabMissing(), "the API load balancer's probe", () => {
  const lab = new ApiServerLab();
  beforeAll(() => lab.start({ serviceCidr: planFor({}).serviceCidr }), 240_000);
  afterAll(() => lab.stop());

  it("leaves out etcd's checks, by names the API server knows, and nothing else", () => {
    const request = readyzRequest(EMULATED_CHECKS);
    expect(request).toBe("/readyz?exclude=etcd&exclude=etcd-readiness");
    const answer = lab.kubectl(["get", "--raw", `${request}&verbose`]);
    expect(answer.stderr).toBe("");
    const lines = answer.stdout.split("\n");
    expect(lines).toEqual(
      expect.arrayContaining([
        "[+]etcd excluded: ok",
        "[+]etcd-readiness excluded: ok",
        "[+]shutdown ok",
        "readyz check passed",
      ]),
    );
    expect(answer.stdout).not.toMatch(/cannot be excluded/);
    expect(lab.kubectl(["get", "--raw", "/readyz"]).stdout).toBe("ok");
  });
});
