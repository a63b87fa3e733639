import type * as PulumiModule from "@pulumi/pulumi";
import { hostNetworkSteps } from "../../components/host/hostNetwork";
import { bridgeName, natTableName } from "../../components/host/layout";
import { RecordedResource, installMocks, unwrap } from "../harness/mocks";
import { planFor } from "./fixtures";

const plan = planFor();

interface Built {
  readonly resources: readonly RecordedResource[];
  readonly outputs: Record<string, unknown>;
}

/** Constructs a HostNetwork under mocks and resolves its outputs. */
async function build(platform: string): Promise<Built> {
  let built: Built | undefined;
  await jest.isolateModulesAsync(async () => {
    const pulumi = (await import("@pulumi/pulumi")) as typeof PulumiModule;
    const resources = await installMocks(pulumi);
    const { HostNetwork } = await import("../../components/host/hostNetwork");
    const network = new HostNetwork("host", { plan, stack: "dev", platform });
    const outputs = {
      vmNetwork: (await unwrap(network.vmNetwork)).value,
      stateDir: (await unwrap(network.stateDir)).value,
      exportDir: (await unwrap(network.exportDir)).value,
      hostIp: (await unwrap(network.hostIp)).value,
    };
    built = { resources, outputs };
  });
  return built as Built;
}

describe("HostNetwork under mocks", () => {
  it("runs the Linux script as root with the bridge, NAT table and dnsmasq config of the stack", async () => {
    const { resources, outputs } = await build("linux");
    expect(resources.map((r) => [r.type, r.name])).toEqual([
      ["hardway:host:HostNetwork", "host"],
      ["pulumi-nodejs:dynamic/host:EnsuredScript", "host-linux"],
    ]);
    const script = resources[1];
    expect(script.parentUrn).toBe(resources[0].urn);
    expect(script.inputs).toMatchObject({
      script: "host/linux-network.sh",
      asRoot: true,
      args: [
        "--bridge",
        bridgeName("dev"),
        "--host-cidr",
        `${plan.hostIp}/24`,
        "--subnet",
        plan.subnet,
        "--state-dir",
        "/var/lib/hardway/dev",
        "--dnsmasq-conf",
        "/var/lib/hardway/dev/dnsmasq.conf",
        "--nat-table",
        natTableName("dev"),
        "--cluster-cidr",
        "10.200.0.0/16",
        "--dnsmasq-conf-from-stdin",
        "--export-dir",
        "/var/lib/hardway/dev/nfs",
        "--exports-file",
        "/etc/exports",
        "--stack",
        "dev",
      ],
    });
    expect(script.inputs.stdin).toContain(`interface=${bridgeName("dev")}\n`);
    expect(script.inputs.__provider).toEqual(expect.any(String));
    expect(outputs).toEqual({
      vmNetwork: { kind: "bridge", bridge: bridgeName("dev") },
      stateDir: "/var/lib/hardway/dev",
      exportDir: "/var/lib/hardway/dev/nfs",
      hostIp: plan.hostIp,
    });
  });

  it("runs the macOS script and hands VMs vmnet-shared over the whole subnet", async () => {
    const { resources, outputs } = await build("darwin");
    const script = resources.find((r) => r.name === "host-darwin");
    expect(script?.inputs).toMatchObject({
      script: "host/macos-network.sh",
      asRoot: true,
      args: [
        "--host-ip",
        plan.hostIp,
        "--subnet",
        plan.subnet,
        "--netmask",
        "255.255.255.0",
        "--state-dir",
        "/var/lib/hardway/dev",
        "--export-dir",
        "/var/lib/hardway/dev/nfs",
        "--exports-file",
        "/etc/exports",
        "--stack",
        "dev",
      ],
    });
    expect(script?.inputs.stdin).toContain(`listen-address=${plan.hostIp}\n`);
    expect(outputs.vmNetwork).toEqual({
      kind: "vmnet-shared",
      startAddress: plan.hostIp,
      endAddress: "192.168.234.254",
      subnetMask: "255.255.255.0",
    });
  });

  it("names an unsupported host platform", () => {
    expect(() => hostNetworkSteps({ plan, stack: "dev", platform: "win32" })).toThrow(
      /"win32" is not supported; hardway runs on linux or darwin/,
    );
  });

  it("keeps the dnsmasq config off the command line", () => {
    const steps = hostNetworkSteps({ plan, stack: "dev", platform: "linux" });
    expect(steps.args.join(" ")).not.toContain("dhcp-host");
    expect(steps.stdin).toContain("dhcp-host=");
  });
});
