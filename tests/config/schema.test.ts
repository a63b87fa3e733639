import { decodeConfigValues } from "../../components/config/load";
import { ConfigError, DEFAULT_SUBNET, parseConfig } from "../../components/config/schema";
import { defaultVersions } from "../../components/config/defaults";

const linuxX64 = { os: "linux" as const, cpu: "x64" };

function problemsOf(raw: Record<string, unknown>, host = linuxX64): string {
  try {
    parseConfig(raw, host);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`config ${JSON.stringify(raw)} was accepted`);
}

describe("stack config", () => {
  it("fills every default and freezes the result", () => {
    const config = parseConfig({}, linuxX64);
    expect(config).toMatchObject({
      arch: "amd64",
      containerRuntime: "containerd",
      cni: "bridge",
      controlPlanes: 3,
      workers: 3,
      subnet: DEFAULT_SUBNET,
      clusterCidr: "10.200.0.0/16",
      serviceCidr: "10.32.0.0/16",
      metallbPool: "192.168.234.200-192.168.234.250",
      accelerator: "auto",
      domain: "hardway.internal",
    });
    expect(config.versions.kubernetes).toBe(defaultVersions.kubernetes);
    expect(config.versions.charts.cilium.version).toBe(defaultVersions.charts.cilium.version);
    expect(config.vm.control).toEqual({ cpus: 2, memory: 2048, disk: 20 });
    expect(config.image.url).toMatch(/noble.*-amd64\.img$/);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.versions.charts)).toBe(true);
  });

  it("defaults the architecture to the host's", () => {
    const config = parseConfig({}, { os: "darwin", cpu: "arm64" });
    expect(config.arch).toBe("arm64");
    expect(config.image.url).toMatch(/-arm64\.img$/);
  });

  it("asks for an explicit architecture on a host it cannot map", () => {
    expect(problemsOf({}, { os: "linux", cpu: "riscv64" })).toMatch(
      /hardway:arch: this host's CPU \(riscv64\) has no default; set it to one of arm64, amd64/,
    );
  });

  it("keeps the default subnet away from home routers' networks", () => {
    expect(["192.168.0.0/24", "192.168.1.0/24"]).not.toContain(DEFAULT_SUBNET);
  });

  it("merges partial objects with their defaults", () => {
    const config = parseConfig(
      {
        versions: { kubernetes: "1.36.5", charts: { metallb: { version: "0.15.0" } } },
        vm: { worker: { memory: 4096 } },
      },
      linuxX64,
    );
    expect(config.versions.kubernetes).toBe("1.36.5");
    expect(config.versions.etcd).toBe(defaultVersions.etcd);
    expect(config.versions.charts.metallb).toEqual({
      ...defaultVersions.charts.metallb,
      version: "0.15.0",
    });
    expect(config.vm.worker).toEqual({ cpus: 2, memory: 4096, disk: 20 });
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      "an unknown arch",
      { arch: "riscv64" },
      /hardway:arch: expected one of auto, arm64, amd64 \(got "riscv64"\)/,
    ],
    [
      "2 control planes",
      { controlPlanes: 2 },
      /hardway:controlPlanes: expected one of 1, 3, 5 \(got 2\)/,
    ],
    [
      "4 control planes",
      { controlPlanes: 4 },
      /hardway:controlPlanes: expected one of 1, 3, 5 \(got 4\)/,
    ],
    [
      "negative workers",
      { workers: -1 },
      /hardway:workers: expected a whole number from 0 to 40 \(got -1\)/,
    ],
    [
      "too many workers",
      { workers: 41 },
      /hardway:workers: expected a whole number from 0 to 40 \(got 41\)/,
    ],
    [
      "fractional workers",
      { workers: 2.5 },
      /hardway:workers: expected a whole number from 0 to 40 \(got 2.5\)/,
    ],
    [
      "workers as text",
      { workers: "three" },
      /hardway:workers: expected a whole number from 0 to 40 \(got "three"\)/,
    ],
    [
      "a /16 subnet",
      { subnet: "10.77.0.0/16" },
      /hardway:subnet: expected a \/24 network.*\(got "10.77.0.0\/16"\)/,
    ],
    [
      "a subnet that is no network",
      { subnet: "10.77.0.5/24" },
      /hardway:subnet: .*host bits set; did you mean 10.77.0.0\/24/,
    ],
    [
      "a public subnet",
      { subnet: "8.8.8.0/24" },
      /hardway:subnet: expected a private \(RFC 1918\) network/,
    ],
    [
      "a subnet inside the cluster CIDR",
      { subnet: "10.200.7.0/24" },
      /hardway:subnet 10.200.7.0\/24 overlaps hardway:clusterCidr 10.200.0.0\/16/,
    ],
    [
      "a subnet inside the service CIDR",
      { subnet: "10.32.9.0/24" },
      /hardway:subnet 10.32.9.0\/24 overlaps hardway:serviceCidr 10.32.0.0\/16/,
    ],
    [
      "cluster and service CIDRs that overlap",
      { serviceCidr: "10.200.128.0/20" },
      /hardway:clusterCidr 10.200.0.0\/16 overlaps hardway:serviceCidr 10.200.128.0\/20/,
    ],
    [
      "a MetalLB pool outside the subnet",
      { metallbPool: "10.9.9.200-10.9.9.250" },
      /hardway:metallbPool 10.9.9.200-10.9.9.250 is not inside hardway:subnet 192.168.234.0\/24/,
    ],
    [
      "a MetalLB pool over the node addresses",
      { metallbPool: "192.168.234.15-192.168.234.30" },
      /hardway:metallbPool 192.168.234.15-192.168.234.30 overlaps the node addresses 192.168.234.1-192.168.234.23/,
    ],
    [
      "a MetalLB pool over the DHCP pool",
      { metallbPool: "192.168.234.120-192.168.234.160" },
      /hardway:metallbPool .* overlaps the DHCP pool 192.168.234.100-192.168.234.149/,
    ],
    [
      "an unknown runtime",
      { containerRuntime: "docker" },
      /hardway:containerRuntime: expected one of containerd, cri-o \(got "docker"\)/,
    ],
    [
      "an unknown cni",
      { cni: "flannel" },
      /hardway:cni: expected one of bridge, cilium \(got "flannel"\)/,
    ],
    [
      "an unknown accelerator",
      { accelerator: "xen" },
      /hardway:accelerator: expected one of auto, hvf, kvm, tcg/,
    ],
    [
      "a cluster CIDR too small for the nodes",
      { clusterCidr: "10.200.0.0/23" },
      /hardway:clusterCidr: 10.200.0.0\/23 cannot give each node its own \/24 pod network, numbered by the last octet of its address \(up to .23 here, so 24 networks of \/24\)/,
    ],
    [
      "a cluster CIDR without the /24 of the last worker's address",
      { clusterCidr: "10.200.0.0/19", workers: 12 },
      /hardway:clusterCidr: 10.200.0.0\/19 cannot give each node .* \(up to .32 here, so 33 networks of \/24\)/,
    ],
    [
      "a version that is no release",
      { versions: { etcd: "latest" } },
      /hardway:versions.etcd: expected a release version such as 1.2.3 \(got "latest"\)/,
    ],
    [
      "a misspelt versions key",
      { versions: { kubernets: "1.33.0" } },
      /hardway:versions.kubernets: unknown key; known keys here: kubernetes, etcd/,
    ],
    [
      "an unknown top-level key",
      { wrokers: 3 },
      /hardway:wrokers: unknown key; known keys here: arch, containerRuntime/,
    ],
    [
      "too little memory",
      { vm: { worker: { memory: 64 } } },
      /hardway:vm.worker.memory: expected a whole number from 512/,
    ],
    [
      "an image digest that is no sha256",
      { image: { sha256: "abc" } },
      /hardway:image.sha256: expected 64 lowercase hex digits/,
    ],
  ])("refuses %s", (_what, raw, message) => {
    expect(problemsOf(raw)).toMatch(message);
  });

  it("reports every problem at once and says how to fix them", () => {
    const message = problemsOf({ arch: "x86", workers: 99, cni: "weave" });
    expect(message).toMatch(/hardway:arch/);
    expect(message).toMatch(/hardway:workers/);
    expect(message).toMatch(/hardway:cni/);
    expect(message).toMatch(/pulumi config set hardway:<key> <value>/);
  });

  it("decodes stack config strings: JSON where they are JSON, text otherwise", () => {
    const raw = decodeConfigValues({
      "hardway:workers": "5",
      "hardway:arch": "arm64",
      "hardway:subnet": "10.77.5.0/24",
      "hardway:versions": '{"kubernetes":"1.34.2"}',
      "other:key": "ignored",
    });
    expect(raw).toEqual({
      workers: 5,
      arch: "arm64",
      subnet: "10.77.5.0/24",
      versions: { kubernetes: "1.34.2" },
    });
  });
});
