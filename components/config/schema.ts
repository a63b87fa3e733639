/**
 * The stack configuration contract (`hardway:*` keys), its defaults and its validation.
 * Everything here is pure: `parseConfig` turns raw values into a typed, frozen
 * `HardwayConfig` or throws a `ConfigError` that lists every problem at once.
 */
import { z } from "zod";
import {
  AddressRange,
  cidrRange,
  formatRange,
  isInternalRange,
  isPrivate,
  nthAddress,
  parseCidr,
  parseRange,
  rangeContains,
  rangesOverlap,
} from "../network/ipv4";
import { defaultImageUrl, defaultVersions } from "./defaults";
import { versionProblems } from "./kubernetesSupport";

export const ARCHES = ["arm64", "amd64"] as const;
export const CONTAINER_RUNTIMES = ["containerd", "cri-o"] as const;
export const CNIS = ["bridge", "cilium"] as const;
export const CONTROL_PLANE_COUNTS = [1, 3, 5] as const;
export const ACCELERATORS = ["auto", "hvf", "kvm", "tcg"] as const;
/** The guide's stages, in order; a stack stops after one of them. */
export const STAGES = ["vms", "controlPlane", "nodes", "services"] as const;
export const MAX_WORKERS = 40;
/** The cluster services of chapter 7 a stack may leave out; Cilium is `cni`'s business. */
export const SERVICES = ["coredns", "metallb", "nfsProvisioner"] as const;

export type Arch = (typeof ARCHES)[number];
export type ContainerRuntime = (typeof CONTAINER_RUNTIMES)[number];
export type Cni = (typeof CNIS)[number];
export type Accelerator = (typeof ACCELERATORS)[number];
export type Stage = (typeof STAGES)[number];
export type Service = (typeof SERVICES)[number];

/** Whether a stack that stops after `stopAfter` builds `stage`. */
export function reached(stopAfter: Stage, stage: Stage): boolean {
  return STAGES.indexOf(stage) <= STAGES.indexOf(stopAfter);
}

/** The project name, and so the namespace of every config key. */
export const PROJECT = "hardway";

/** Host parts of the VM subnet that the address plan reserves (see SPEC.md). */
export const HOST_PARTS = {
  host: 1,
  gateway: 10,
  firstControl: 11,
  apiVip: 20,
  firstWorker: 21,
  dhcp: { first: 100, last: 149 },
  metallb: { first: 200, last: 250 },
} as const;

export const DEFAULT_SUBNET = "192.168.234.0/24";
export const DEFAULT_CLUSTER_CIDR = "10.200.0.0/16";

/** The DNS domain of Services and Pods inside the cluster (the kubelet's clusterDomain). */
export const CLUSTER_DOMAIN = "cluster.local";

/** kube-apiserver refuses an IPv4 service range with more than 20 host bits. */
export const WIDEST_SERVICE_PREFIX = 12;

/** What the program needs to know about the machine it runs on to pick defaults. */
export interface HostFacts {
  readonly os: NodeJS.Platform;
  /** `process.arch` of the host, e.g. "x64" or "arm64". */
  readonly cpu: string;
}

function oneOf<T extends readonly (string | number)[]>(values: T): string {
  return `expected one of ${values.join(", ")}`;
}

/**
 * A JSON object with exactly these fields. A value of another type (a string, a list) is named
 * as such, with the fields that were expected.
 */
function object<S extends z.ZodRawShape>(shape: S) {
  const expected = `expected a JSON object with the fields ${Object.keys(shape).join(", ")}`;
  return z.strictObject(shape, {
    error: (issue) => (issue.code === "invalid_type" ? expected : undefined),
  });
}

const wholeNumber = (min: number, max: number) =>
  z
    .number({ error: `expected a whole number from ${min} to ${max}` })
    .int({ error: `expected a whole number from ${min} to ${max}` })
    .min(min, { error: `expected a whole number from ${min} to ${max}` })
    .max(max, { error: `expected a whole number from ${min} to ${max}` });

const cidrText = z
  .string({ error: "expected an IPv4 network such as 10.0.0.0/16" })
  .check((ctx) => {
    try {
      parseCidr(ctx.value);
    } catch (err) {
      ctx.issues.push({ code: "custom", message: (err as Error).message, input: ctx.value });
    }
  });

const rangeText = z
  .string({ error: "expected a range such as 10.0.0.200-10.0.0.250" })
  .check((ctx) => {
    try {
      parseRange(ctx.value);
    } catch (err) {
      ctx.issues.push({ code: "custom", message: (err as Error).message, input: ctx.value });
    }
  });

const absolutePath = (what: string) =>
  z
    .string({ error: `expected the absolute path of ${what}` })
    .regex(/^\/[^\0]*[^/]$/, { error: `expected the absolute path of ${what}` });

const mirrorBase = z.string().regex(/^(\/[^\0]*|https?:\/\/[^\s]+|file:\/\/\/[^\s]*)$/, {
  error: "expected an absolute directory or an https://, http:// or file:/// base URL",
});

const sha256 = z
  .string()
  .regex(/^[0-9a-f]{64}$/, { error: "expected 64 lowercase hex digits (a sha256 digest)" });

/**
 * Where charts come from: an http(s) Helm repository (its index.yaml), an OCI registry path
 * (`oci://registry/path`, the chart is `<path>/<chart>`) or a local directory holding packaged
 * charts (`<directory>/<chart>-<version>.tgz`, as `helm package` names them).
 */
const chartRepository = z.string().regex(/^(https?:\/\/[^\s]+|oci:\/\/[^\s]+|\/[^\0]*)$/, {
  error:
    "expected an https:// Helm repository, an oci:// registry path or the absolute path of a directory of packaged charts",
});

/** A registry as image names start with it: docker.io, registry.k8s.io, 10.0.0.1:5000. */
const registryName = z.string().regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/, {
  error: "expected a registry host such as docker.io or registry.example:5000",
});

const registryMirror = object({
  /** Tried in order before the registry itself; http:// for a registry without TLS. */
  endpoints: z
    .array(
      z.string().regex(/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?(\/[^\s]*)?$/, {
        error: "expected an http:// or https:// registry URL such as https://mirror.lab:5000",
      }),
      { error: "expected a JSON list of http:// or https:// registry URLs" },
    )
    .min(1, { error: "expected at least one endpoint" }),
  /** The PEM file (on this host) of the CA that signed the endpoints' certificates. */
  ca: absolutePath("a CA certificate file (PEM)").optional(),
});

const chart = (d: { repository: string; chart: string; version: string }) =>
  object({
    repository: chartRepository.default(d.repository),
    chart: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, {
        error: "expected a chart name such as metallb",
      })
      .default(d.chart),
    // An exact version: "latest" or a range would install whatever the repository has today.
    version: z
      .string()
      .regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, {
        error: "expected an exact chart version such as 1.2.3",
      })
      .default(d.version),
  }).prefault({});

/** A release's Helm values: a JSON object, as a values.yaml file would hold. */
const helmValues = z.record(z.string(), z.unknown(), {
  error: 'expected a JSON object of Helm values such as {"operator": {"replicas": 1}}',
});

const version = (d: string) =>
  z
    .string()
    .regex(/^\d+\.\d+\.\d+$/, { error: "expected a release version such as 1.2.3" })
    .default(d);

const versions = object({
  kubernetes: version(defaultVersions.kubernetes),
  etcd: version(defaultVersions.etcd),
  containerd: version(defaultVersions.containerd),
  crio: version(defaultVersions.crio),
  runc: version(defaultVersions.runc),
  cniPlugins: version(defaultVersions.cniPlugins),
  crictl: version(defaultVersions.crictl),
  coredns: version(defaultVersions.coredns),
  charts: object({
    cilium: chart(defaultVersions.charts.cilium),
    metallb: chart(defaultVersions.charts.metallb),
    nfsProvisioner: chart(defaultVersions.charts.nfsProvisioner),
  }).prefault({}),
}).prefault({});

const vmSize = (d: { cpus: number; memory: number; disk: number }) =>
  object({
    cpus: wholeNumber(1, 64).default(d.cpus),
    /** MiB of guest memory. */
    memory: wholeNumber(512, 262144).default(d.memory),
    /** GiB of qcow2 disk (the overlay's virtual size). */
    disk: wholeNumber(4, 2048).default(d.disk),
  }).prefault({});

/** Role sizes; the default cluster (1 gateway, 3 control, 3 workers) needs 12.5 GiB of RAM. */
export const DEFAULT_VM_SIZES = {
  gateway: { cpus: 1, memory: 512, disk: 8 },
  control: { cpus: 2, memory: 2048, disk: 20 },
  worker: { cpus: 2, memory: 2048, disk: 20 },
} as const;

const pki = object({
  /** Lifetime of the three CAs. */
  caValidityHours: wholeNumber(24, 24 * 365 * 30).default(24 * 365 * 10),
  /** Lifetime of every leaf certificate. */
  validityHours: wholeNumber(1, 24 * 365 * 10).default(24 * 365),
  /** Pulumi re-issues a certificate this long before it expires. */
  earlyRenewalHours: wholeNumber(0, 24 * 365).default(24 * 30),
}).prefault({});

/** The raw schema, keyed exactly like the `hardway:` config keys. */
export const configSchema = z.strictObject({
  /** "auto": the host's architecture. */
  arch: z.enum(["auto", ...ARCHES], { error: oneOf(["auto", ...ARCHES]) }).default("auto"),
  containerRuntime: z
    .enum(CONTAINER_RUNTIMES, { error: oneOf(CONTAINER_RUNTIMES) })
    .default("containerd"),
  cni: z.enum(CNIS, { error: oneOf(CNIS) }).default("bridge"),
  controlPlanes: z
    .union(
      CONTROL_PLANE_COUNTS.map((n) => z.literal(n)),
      { error: oneOf(CONTROL_PLANE_COUNTS) },
    )
    .default(3),
  workers: wholeNumber(0, MAX_WORKERS).default(3),
  subnet: cidrText.default(DEFAULT_SUBNET),
  clusterCidr: cidrText.default(DEFAULT_CLUSTER_CIDR),
  serviceCidr: cidrText.default("10.32.0.0/16"),
  /** "auto": .200-.250 of the subnet. */
  metallbPool: z.union([z.literal("auto"), rangeText]).default("auto"),
  domain: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, {
      error: "expected a lowercase DNS domain with at least two labels, such as hardway.internal",
    })
    .refine((d) => d.split(".").every((label) => label.length <= 63) && d.length <= 253, {
      error: "expected DNS labels of at most 63 characters and at most 253 in all",
    })
    .refine((d) => d !== CLUSTER_DOMAIN && !d.endsWith(`.${CLUSTER_DOMAIN}`), {
      error: `expected a domain outside ${CLUSTER_DOMAIN}, which CoreDNS answers for the cluster's Services and Pods`,
    })
    .default("hardway.internal"),
  accelerator: z.enum(ACCELERATORS, { error: oneOf(ACCELERATORS) }).default("auto"),
  versions,
  vm: object({
    gateway: vmSize(DEFAULT_VM_SIZES.gateway),
    control: vmSize(DEFAULT_VM_SIZES.control),
    worker: vmSize(DEFAULT_VM_SIZES.worker),
  }).prefault({}),
  image: object({
    url: z.url({ error: "expected the URL of a cloud image" }).optional(),
    sha256: sha256.optional(),
    path: absolutePath("a local image file").optional(),
    /** The image already holds every package the nodes need; cloud-init installs nothing. */
    prebaked: z.boolean({ error: "expected true or false" }).default(false),
    /** The login user cloud-init creates (any distribution; the key is authorised for it). */
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, {
        error: "expected a lowercase user name such as ubuntu",
      })
      .default("ubuntu"),
    /** Direct kernel boot (no firmware, no boot loader): the kernel on the host. */
    kernel: absolutePath("a kernel image").optional(),
    initrd: absolutePath("an initrd").optional(),
    /** The kernel command line for direct boot. */
    kernelArgs: z.string().min(1).optional(),
  }).prefault({}),
  pki,
  /** "": the upstream release hosts. */
  releaseMirror: z.union([z.literal(""), mirrorBase]).default(""),
  stopAfter: z.enum(STAGES, { error: oneOf(STAGES) }).default("services"),
  services: z
    .array(z.enum(SERVICES, { error: oneOf(SERVICES) }), {
      error: `expected a JSON list of services, each one of ${SERVICES.join(", ")}`,
    })
    .refine((list) => new Set(list).size === list.length, {
      error: "expected each service at most once",
    })
    .default([...SERVICES]),
  /** "": each chart's own `versions.charts.<name>.repository`. */
  chartMirror: z.union([z.literal(""), chartRepository]).default(""),
  /**
   * Helm values of each release laid over hardway's own (overlayValues): objects merge key by
   * key, anything else (a list, a string) replaces hardway's value.
   */
  chartValues: object({
    cilium: helmValues.optional(),
    metallb: helmValues.optional(),
    nfsProvisioner: helmValues.optional(),
  }).default({}),
  /** Registry (docker.io, registry.k8s.io, host:port) → where its images are pulled from first. */
  registryMirrors: z
    .record(registryName, registryMirror, {
      error: 'expected a JSON object such as {"docker.io": {"endpoints": ["https://mirror:5000"]}}',
    })
    .default({}),
  podImages: z
    .array(absolutePath("an OCI image archive"), {
      error: "expected a JSON list of absolute paths of OCI image archives",
    })
    .default([]),
});

type Parsed = z.infer<typeof configSchema>;
type DeepReadonly<T> = { readonly [K in keyof T]: T[K] extends object ? DeepReadonly<T[K]> : T[K] };

/** The validated stack configuration every component receives. */
export type HardwayConfig = DeepReadonly<
  Omit<Parsed, "arch" | "metallbPool" | "image"> & {
    arch: Arch;
    metallbPool: string;
    image: Parsed["image"] & { url: string };
  }
>;
export type Versions = HardwayConfig["versions"];
export type VmSize = HardwayConfig["vm"]["worker"];

/** Every problem with the stack configuration, one per line. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `invalid stack configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}\n` +
        `Fix it with \`pulumi config set ${PROJECT}:<key> <value>\` (or edit Pulumi.<stack>.yaml).`,
    );
    this.name = "ConfigError";
  }
}

export function hostArch(host: HostFacts): Arch | undefined {
  return host.cpu === "x64" ? "amd64" : host.cpu === "arm64" ? "arm64" : undefined;
}

/**
 * A config key as `pulumi config set --path` takes it: `hardway:vm.worker.memory`, a list item as
 * `hardway:services[1]`, a field whose name has dots as `hardway:registryMirrors["docker.io"]`.
 */
function key(path: readonly PropertyKey[]): string {
  const [first, ...rest] = path.map(String);
  const segments = rest.map((s) =>
    /^\d+$/.test(s)
      ? `[${s}]`
      : /^[A-Za-z_][A-Za-z0-9_]*$/.test(s)
        ? `.${s}`
        : `[${JSON.stringify(s)}]`,
  );
  return `${PROJECT}:${first ?? ""}${segments.join("")}`;
}

function describe(value: unknown): string {
  return typeof value === "string" ? `"${value}"` : JSON.stringify(value);
}

/**
 * Validates raw config values (already JSON-decoded where they were JSON) and applies defaults.
 * Throws a ConfigError naming each bad key, its value and what is allowed.
 */
export function parseConfig(
  raw: Readonly<Record<string, unknown>>,
  host: HostFacts,
): HardwayConfig {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.flatMap((issue) => {
        if (issue.code === "unrecognized_keys") {
          const nested = issue.keys.filter((k) => issue.path.length === 0 && isNestedKey(k));
          const unknown = issue.keys.filter((k) => !nested.includes(k));
          return [
            ...nested.map(
              (k) =>
                `${key([k])}: not a key but a field of ${key([k.split(".")[0]])}; set it with --path: pulumi config set --path '${key([k])}' <value>`,
            ),
            ...(unknown.length === 0
              ? []
              : [
                  `${unknown.map((k) => key([...issue.path, k])).join(", ")}: unknown key; known keys here: ${knownKeys(issue.path).join(", ")}`,
                ]),
          ];
        }
        const got = issue.input === undefined ? "" : ` (got ${describe(issue.input)})`;
        return [`${key(issue.path)}: ${issue.message}${got}`];
      }),
    );
  }
  const parsed = result.data;
  const arch = parsed.arch === "auto" ? hostArch(host) : parsed.arch;
  const problems: string[] = [];
  if (arch === undefined) {
    problems.push(
      `${key(["arch"])}: this host's CPU (${host.cpu}) has no default; set it to one of ${ARCHES.join(", ")}`,
    );
  }
  const subnet = cidrRange(parseCidr(parsed.subnet));
  const metallbPool =
    parsed.metallbPool !== "auto"
      ? parsed.metallbPool
      : formatRange({
          first: subnet.first + HOST_PARTS.metallb.first,
          last: subnet.first + HOST_PARTS.metallb.last,
        });
  problems.push(...checkNetworks({ ...parsed, metallbPool }), ...checkOthers(parsed));
  if (problems.length > 0) {
    throw new ConfigError(problems);
  }
  return deepFreeze({
    ...parsed,
    arch: arch as Arch,
    metallbPool,
    image: { ...parsed.image, url: parsed.image.url ?? defaultImageUrl(arch as Arch) },
  });
}

/** `vm.worker.memory`: what `pulumi config set` without --path stores for a nested field. */
function isNestedKey(name: string): boolean {
  const [top] = name.split(".");
  return name.includes(".") && top in configSchema.shape;
}

/** Cross-key checks outside the networks: certificate lifetimes, the image, pod images. */
function checkOthers(c: Parsed): string[] {
  const problems: string[] = [];
  const { caValidityHours, validityHours, earlyRenewalHours } = c.pki;
  if (validityHours <= earlyRenewalHours) {
    problems.push(
      `${key(["pki", "validityHours"])} ${validityHours} is not longer than ${key(["pki", "earlyRenewalHours"])} ${earlyRenewalHours}: every pulumi up would re-issue every certificate`,
    );
  }
  if (caValidityHours <= validityHours) {
    problems.push(
      `${key(["pki", "caValidityHours"])} ${caValidityHours} is not longer than ${key(["pki", "validityHours"])} ${validityHours}: the CAs would expire before the certificates they sign`,
    );
  }
  const url = c.image.url;
  if (url !== undefined && !/^(https|file):/.test(url) && c.image.sha256 === undefined) {
    problems.push(
      `${key(["image", "url"])} "${url}": only https:// and file:// images are trusted as they are; pin ${key(["image", "sha256"])} to use another source`,
    );
  }
  problems.push(...versionProblems(c.versions));
  for (const [registry, mirror] of Object.entries(c.registryMirrors)) {
    if (mirror.ca !== undefined && !mirror.endpoints.some((e) => e.startsWith("https://"))) {
      problems.push(
        `${key(["registryMirrors", registry, "ca"])}: a CA only checks https:// endpoints, and ${registry} has none`,
      );
    }
  }
  if (c.podImages.length > 0 && c.containerRuntime !== "containerd") {
    problems.push(
      `${key(["podImages"])} are loaded into containerd only; with ${key(["containerRuntime"])} "${c.containerRuntime}" leave it empty`,
    );
  }
  return problems;
}

function knownKeys(path: readonly PropertyKey[]): string[] {
  let shape: z.ZodType = configSchema;
  for (const segment of path) {
    shape = unwrapObject(shape).shape[String(segment)] as z.ZodType;
  }
  return Object.keys(unwrapObject(shape).shape);
}

function unwrapObject(schema: z.ZodType): z.ZodObject {
  let current: z.ZodType = schema;
  while (!(current instanceof z.ZodObject)) {
    current = (current as z.ZodPrefault<z.ZodType>).def.innerType;
  }
  return current;
}

interface NetworkKeys {
  readonly subnet: string;
  readonly clusterCidr: string;
  readonly serviceCidr: string;
  readonly metallbPool: string;
  readonly controlPlanes: number;
  readonly workers: number;
}

/** Cross-key checks: the four address ranges must not collide, and each must be big enough. */
export function checkNetworks(c: NetworkKeys): string[] {
  const problems: string[] = [];
  const subnetCidr = parseCidr(c.subnet);
  if (subnetCidr.prefix !== 24) {
    problems.push(
      `${key(["subnet"])}: expected a /24 network, such as ${DEFAULT_SUBNET} (got "${c.subnet}")`,
    );
    return problems;
  }
  if (!isPrivate(subnetCidr.network)) {
    problems.push(`${key(["subnet"])}: expected a private (RFC 1918) network (got "${c.subnet}")`);
  }
  const ranges: [string, string, AddressRange][] = [
    ["subnet", c.subnet, cidrRange(subnetCidr)],
    ["clusterCidr", c.clusterCidr, cidrRange(parseCidr(c.clusterCidr))],
    ["serviceCidr", c.serviceCidr, cidrRange(parseCidr(c.serviceCidr))],
  ];
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const [ka, va, ra] = ranges[i];
      const [kb, vb, rb] = ranges[j];
      if (rangesOverlap(ra, rb)) {
        problems.push(
          `${key([ka])} ${va} overlaps ${key([kb])} ${vb}; pick networks that do not intersect`,
        );
      }
    }
  }

  for (const [name, value] of [
    ["clusterCidr", c.clusterCidr],
    ["serviceCidr", c.serviceCidr],
  ] as const) {
    if (!isInternalRange(cidrRange(parseCidr(value)))) {
      problems.push(
        `${key([name])}: ${value} is not a private network; expected a network inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10 (the host routes it to the cluster)`,
      );
    }
  }

  // A node's pod /24 is numbered by the last octet of its address (addressPlan).
  const lastHostPart = Math.max(
    HOST_PARTS.firstControl + c.controlPlanes - 1,
    c.workers > 0 ? HOST_PARTS.firstWorker + c.workers - 1 : 0,
  );
  const cluster = parseCidr(c.clusterCidr);
  if (cluster.prefix > 24 || 2 ** (24 - cluster.prefix) <= lastHostPart) {
    problems.push(
      `${key(["clusterCidr"])}: ${c.clusterCidr} cannot give each node its own /24 pod network, numbered by the last octet of its address (up to .${lastHostPart} here, so ${lastHostPart + 1} networks of /24); use a larger network such as 10.200.0.0/16`,
    );
  }
  const service = parseCidr(c.serviceCidr);
  if (service.prefix > 24) {
    problems.push(
      `${key(["serviceCidr"])}: ${c.serviceCidr} is too small for services; use a /24 or larger`,
    );
  } else if (service.prefix < WIDEST_SERVICE_PREFIX) {
    problems.push(
      `${key(["serviceCidr"])}: ${c.serviceCidr} is wider than kube-apiserver accepts; use a /${WIDEST_SERVICE_PREFIX} or smaller, such as 10.32.0.0/16`,
    );
  }

  const pool = parseRange(c.metallbPool);
  const subnet = cidrRange(subnetCidr);
  const nodeAddresses: AddressRange = {
    first: nthAddress(subnetCidr, HOST_PARTS.host),
    last: nthAddress(subnetCidr, HOST_PARTS.firstWorker + Math.max(c.workers, 1) - 1),
  };
  const dhcp: AddressRange = {
    first: subnet.first + HOST_PARTS.dhcp.first,
    last: subnet.first + HOST_PARTS.dhcp.last,
  };
  if (rangeContains(subnet, pool) && (pool.first === subnet.first || pool.last === subnet.last)) {
    problems.push(
      `${key(["metallbPool"])} ${c.metallbPool} includes the network or broadcast address of ${key(["subnet"])} ${c.subnet}; use addresses from .2 to .254 that no node has, such as the default .200-.250`,
    );
  } else if (!rangeContains({ first: subnet.first + 1, last: subnet.last - 1 }, pool)) {
    problems.push(
      `${key(["metallbPool"])} ${c.metallbPool} is not inside ${key(["subnet"])} ${c.subnet}; MetalLB answers ARP on the VM network, so its addresses must be on it`,
    );
  } else if (rangesOverlap(pool, nodeAddresses)) {
    problems.push(
      `${key(["metallbPool"])} ${c.metallbPool} overlaps the node addresses ${formatRange(nodeAddresses)} of ${key(["subnet"])} ${c.subnet}`,
    );
  } else if (rangesOverlap(pool, dhcp)) {
    problems.push(
      `${key(["metallbPool"])} ${c.metallbPool} overlaps the DHCP pool ${formatRange(dhcp)} of ${key(["subnet"])} ${c.subnet}`,
    );
  }
  return problems;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const child of Object.values(value)) {
      deepFreeze(child);
    }
    Object.freeze(value);
  }
  return value;
}
