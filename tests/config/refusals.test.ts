/**
 * Configurations that cannot work are refused before any resource exists, naming the key, the
 * value and what is allowed; choices that work but may hurt are warned about. The host is a
 * stand-in, so every case runs on any machine.
 */
import { validateStackConfig } from "../../components/config/load";
import { HostEnvironment, configWarnings } from "../../components/config/host";
import { ConfigError, parseConfig } from "../../components/config/schema";
import { bridgeName } from "../../components/host/layout";

const FILES = new Set(["/srv/images/base.qcow2", "/srv/images/pause.tar"]);
const HOST: HostEnvironment = {
  os: "linux",
  cpu: "x64",
  exists: (path) => FILES.has(path),
  interfaces: [
    { name: "wlan0", cidr: "192.168.1.23/24" },
    { name: "docker0", cidr: "172.17.0.1/16" },
    // This stack's own bridge, from an earlier up.
    { name: bridgeName("dev"), cidr: "192.168.234.1/24" },
  ],
  routes: [{ dst: "10.200.0.0/24", gateway: "192.168.234.11" }],
  memoryMiB: 32768,
  cpus: 8,
};
const VM_HOST = { hostOs: "linux" as const, hostCpu: "x64", kvmUsable: false };

/** Stack config as `pulumi config set` leaves it: full keys, string values (JSON for objects). */
function stack(values: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [
      k.includes(":") ? k : `hardway:${k}`,
      typeof v === "string" ? v : JSON.stringify(v),
    ]),
  );
}

function problems(values: Record<string, unknown>): readonly string[] {
  try {
    validateStackConfig(stack(values), HOST, VM_HOST, "dev");
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`${JSON.stringify(values)} was accepted`);
}

const REFUSED: [string, Record<string, unknown>, RegExp][] = [
  [
    "a public pod network",
    { clusterCidr: "8.8.0.0/16" },
    /^hardway:clusterCidr: 8\.8\.0\.0\/16 is not a private network; expected a network inside 10\.0\.0\.0\/8/,
  ],
  [
    "a loopback service network",
    { serviceCidr: "127.0.0.0/16" },
    /^hardway:serviceCidr: 127\.0\.0\.0\/16 is not a private/,
  ],
  [
    "a link-local pod network",
    { clusterCidr: "169.254.0.0/16" },
    /^hardway:clusterCidr: 169\.254\.0\.0\/16 is not a private/,
  ],
  [
    "a private block that spills into public space",
    { clusterCidr: "172.0.0.0/8" },
    /^hardway:clusterCidr: 172\.0\.0\.0\/8 is not a private/,
  ],
  [
    "a service network wider than kube-apiserver takes",
    { serviceCidr: "10.0.0.0/11", clusterCidr: "172.16.0.0/16" },
    /^hardway:serviceCidr: 10\.0\.0\.0\/11 is wider than kube-apiserver accepts; use a \/12 or smaller/,
  ],
  [
    "certificates that renew as soon as they are issued",
    { pki: { validityHours: 720, earlyRenewalHours: 720 } },
    /^hardway:pki\.validityHours 720 is not longer than hardway:pki\.earlyRenewalHours 720: every pulumi up would re-issue/,
  ],
  [
    "a CA that expires before its certificates",
    { pki: { caValidityHours: 8000, validityHours: 8760 } },
    /^hardway:pki\.caValidityHours 8000 is not longer than hardway:pki\.validityHours 8760: the CAs would expire/,
  ],
  [
    "the cluster domain",
    { domain: "cluster.local" },
    /^hardway:domain: expected a domain outside cluster\.local/,
  ],
  [
    "a domain under the cluster domain",
    { domain: "vms.cluster.local" },
    /^hardway:domain: expected a domain outside cluster\.local/,
  ],
  [
    "a DNS label over 63 characters",
    { domain: `${"a".repeat(64)}.internal` },
    /^hardway:domain: expected DNS labels of at most 63 characters/,
  ],
  [
    "an http image without a pinned digest",
    { image: { url: "http://mirror.example/noble.img" } },
    /^hardway:image\.url "http:\/\/mirror\.example\/noble\.img": only https:\/\/ and file:\/\/ images are trusted as they are; pin hardway:image\.sha256/,
  ],
  [
    "an image file that is not there",
    { image: { path: "/srv/images/gone.qcow2" } },
    /^hardway:image\.path: no file at \/srv\/images\/gone\.qcow2 on this host$/,
  ],
  [
    "a pod image archive that is not there",
    { podImages: ["/srv/images/pause.tar", "/srv/echo.tar"] },
    /^hardway:podImages\[1\]: no file at \/srv\/echo\.tar/,
  ],
  [
    "pod images with CRI-O",
    { podImages: ["/srv/images/pause.tar"], containerRuntime: "cri-o" },
    /^hardway:podImages are loaded into containerd only; with hardway:containerRuntime "cri-o" leave it empty$/,
  ],
  [
    "a chart version that is not exact",
    { versions: { charts: { cilium: { version: "latest" } } } },
    /^hardway:versions\.charts\.cilium\.version: expected an exact chart version such as 1\.2\.3 \(got "latest"\)$/,
  ],
  [
    "a service that is not one of the three",
    { services: ["coredns", "traefik"] },
    /^hardway:services\[1\]: expected one of coredns, metallb, nfsProvisioner \(got "traefik"\)$/,
  ],
  [
    "a service named twice",
    { services: ["metallb", "metallb"] },
    /^hardway:services: expected each service at most once/,
  ],
  [
    "services given as one string",
    { services: "coredns" },
    /^hardway:services: expected a JSON list of services, each one of coredns, metallb, nfsProvisioner \(got "coredns"\)$/,
  ],
  [
    "a chart repository that is none of the three kinds",
    { versions: { charts: { metallb: { repository: "charts/metallb" } } } },
    /^hardway:versions\.charts\.metallb\.repository: expected an https:\/\/ Helm repository, an oci:\/\/ registry path or the absolute path of a directory of packaged charts \(got "charts\/metallb"\)$/,
  ],
  [
    "a chart mirror directory without the packaged chart",
    { chartMirror: "/srv/charts", services: ["metallb"] },
    /^hardway:chartMirror: no file at \/srv\/charts\/metallb-0\.16\.2\.tgz on this host$/,
  ],
  [
    "chart values for a release hardway does not install",
    { chartValues: { traefik: { replicas: 1 } } },
    /^hardway:chartValues\.traefik: unknown key; known keys here: cilium, metallb, nfsProvisioner$/,
  ],
  [
    "chart values that are not an object",
    { chartValues: { cilium: "envoy.enabled=false" } },
    /^hardway:chartValues\.cilium: expected a JSON object of Helm values such as \{"operator": \{"replicas": 1\}\}/,
  ],
  [
    "a registry mirror without endpoints",
    { registryMirrors: { "docker.io": { endpoints: [] } } },
    /^hardway:registryMirrors\["docker\.io"\]\.endpoints: expected at least one endpoint/,
  ],
  [
    "a registry mirror endpoint that is not a URL",
    { registryMirrors: { "quay.io": { endpoints: ["mirror.lab:5000"] } } },
    /^hardway:registryMirrors\["quay\.io"\]\.endpoints\[0\]: expected an http:\/\/ or https:\/\/ registry URL such as https:\/\/mirror\.lab:5000 \(got "mirror\.lab:5000"\)$/,
  ],
  [
    "a registry mirror CA for plain http endpoints",
    {
      registryMirrors: {
        "registry.k8s.io": { endpoints: ["http://10.0.0.5:5000"], ca: "/srv/images/pause.tar" },
      },
    },
    /^hardway:registryMirrors\["registry\.k8s\.io"\]\.ca: a CA only checks https:\/\/ endpoints, and registry\.k8s\.io has none$/,
  ],
  [
    "a registry mirror CA that is not there",
    { registryMirrors: { "docker.io": { endpoints: ["https://m.lab"], ca: "/srv/ca.pem" } } },
    /^hardway:registryMirrors\["docker\.io"\]\.ca: no file at \/srv\/ca\.pem on this host$/,
  ],
  [
    "a nested field set without --path",
    { "vm.worker.memory": 4096 },
    /^hardway:vm\.worker\.memory: not a key but a field of hardway:vm; set it with --path: pulumi config set --path 'hardway:vm\.worker\.memory' <value>$/,
  ],
  [
    "a MetalLB pool that reaches the broadcast address",
    { metallbPool: "192.168.234.240-192.168.234.255" },
    /^hardway:metallbPool 192\.168\.234\.240-192\.168\.234\.255 includes the network or broadcast address/,
  ],
  [
    "an object given as a plain string",
    { vm: "big" },
    /^hardway:vm: expected a JSON object with the fields gateway, control, worker \(got "big"\)$/,
  ],
  [
    "a list given as a plain string",
    { podImages: "/srv/images/pause.tar" },
    /^hardway:podImages: expected a JSON list of absolute paths of OCI image archives/,
  ],
  [
    "KVM where there is none",
    { accelerator: "kvm" },
    /^hardway:accelerator "kvm" needs a usable \/dev\/kvm/,
  ],
];

describe("refused configurations", () => {
  it.each(REFUSED)("%s", (_what, values, message) => {
    expect(problems(values)).toEqual([expect.stringMatching(message)]);
  });

  it("lists an accelerator problem together with the other keys' problems", () => {
    expect(problems({ accelerator: "kvm", workers: 100, domain: "cluster.local" })).toEqual([
      expect.stringMatching(/^hardway:workers: expected a whole number from 0 to 40/),
      expect.stringMatching(/^hardway:domain: expected a domain outside cluster\.local/),
      expect.stringMatching(/^hardway:accelerator "kvm" needs a usable \/dev\/kvm/),
    ]);
  });

  it("accepts files that exist, carrier-grade NAT networks and an http image with its digest", () => {
    const loaded = validateStackConfig(
      stack({
        image: {
          path: "/srv/images/base.qcow2",
          url: "http://mirror/x.img",
          sha256: "a".repeat(64),
        },
        podImages: ["/srv/images/pause.tar"],
        clusterCidr: "100.64.0.0/16",
        serviceCidr: "10.0.0.0/12",
      }),
      HOST,
      VM_HOST,
      "dev",
    );
    expect(loaded.accelerator).toBe("tcg");
    expect(loaded.config.clusterCidr).toBe("100.64.0.0/16");
  });
});

describe("two stacks on one host", () => {
  // Stack "lab" runs on 10.77.5.0/24 with its pods on 10.200.0.0/16, the defaults' pod network.
  const withLab: HostEnvironment = {
    ...HOST,
    interfaces: [...HOST.interfaces, { name: bridgeName("lab"), cidr: "10.77.5.1/24" }],
    routes: [...HOST.routes, { dst: "10.200.1.0/24", gateway: "10.77.5.21" }],
  };
  const problemsWithLab = (values: Record<string, unknown>) => {
    try {
      validateStackConfig(stack(values), withLab, VM_HOST, "dev");
    } catch (err) {
      return (err as ConfigError).problems;
    }
    return [];
  };

  it("refuses the subnet and the pod network of another stack, naming its bridge", () => {
    expect(problemsWithLab({ subnet: "10.77.5.0/24" })).toEqual([
      `hardway:subnet 10.77.5.0/24 is the network of another hardway stack (bridge ${bridgeName("lab")}, 10.77.5.1/24); give this stack another private /24`,
      `hardway:clusterCidr 10.200.0.0/16 overlaps 10.200.1.0/24, which the host routes to a VM of another hardway stack (bridge ${bridgeName("lab")}); give this stack another pod network, such as 10.201.0.0/16`,
    ]);
  });

  it("accepts a stack kept apart, and its own bridge and routes from an earlier up", () => {
    expect(problemsWithLab({ clusterCidr: "10.201.0.0/16" })).toEqual([]);
  });
});

describe("warnings", () => {
  const warningsFor = (values: Record<string, unknown>, host: HostEnvironment = HOST) =>
    validateStackConfig(stack(values), host, VM_HOST, "dev").warnings;

  it("says nothing about the defaults on a roomy host whose bridge holds the subnet's .1", () => {
    expect(warningsFor({})).toEqual([]);
  });

  it("warns about a subnet home routers use, and one already on an interface", () => {
    expect(warningsFor({ subnet: "192.168.1.0/24" })).toEqual([
      expect.stringMatching(/^hardway:subnet 192\.168\.1\.0\/24 is on a network home routers use/),
      expect.stringMatching(
        /^hardway:subnet 192\.168\.1\.0\/24 overlaps 192\.168\.1\.23\/24 on wlan0, one of this host's interfaces/,
      ),
    ]);
  });

  it("warns about pod and service networks on Docker's bridge", () => {
    expect(warningsFor({ serviceCidr: "172.17.0.0/16" })).toEqual([
      expect.stringMatching(/^hardway:serviceCidr 172\.17\.0\.0\/16 overlaps 172\.17\.0\.1\/16/),
    ]);
  });

  it("warns when the VMs want more memory or CPUs than the host has", () => {
    const small = { ...HOST, memoryMiB: 8192, cpus: 2 };
    expect(warningsFor({ vm: { worker: { cpus: 4 } } }, small)).toEqual([
      expect.stringMatching(/^the VMs declare 12800 MiB of RAM and this host has 8192 MiB/),
      expect.stringMatching(/^hardway:vm\.worker\.cpus 4 is more than this host's 2 CPUs$/),
    ]);
  });

  it("warns that foreign-architecture guests are emulated", () => {
    expect(warningsFor({ arch: "arm64" })).toEqual([
      expect.stringMatching(
        /^hardway:arch arm64 differs from this host's CPU \(x64\): the VMs run under emulation/,
      ),
    ]);
  });

  it("warns about a misspelt hardway namespace, and not about other projects' keys", () => {
    const config = parseConfig({}, HOST);
    expect(
      configWarnings(
        config,
        HOST,
        ["hardwy:workers", "hardway:cni", "aws:region", "pulumi:tags"],
        bridgeName("dev"),
      ),
    ).toEqual([
      'hardwy:workers is ignored: its namespace is "hardwy", not "hardway"; did you mean hardway:workers?',
    ]);
  });
});
