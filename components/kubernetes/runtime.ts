/**
 * The container runtime on every kubelet node: containerd + runc, or CRI-O (which brings its own
 * runc, crun and conmon). Both use the systemd cgroup driver, matching the kubelet's.
 */
import { stringify } from "yaml";
import { ContainerRuntime, HardwayConfig } from "../config/schema";
import { BIN_DIR, CNI_BIN_DIR, CNI_CONF_DIR, CRIO_LIBEXEC_DIR } from "./paths";
import { renderServiceUnit, ServiceUnit } from "./systemd";
import { TomlTable, renderToml } from "./toml";

export const RUNTIME_ENDPOINTS: Readonly<Record<ContainerRuntime, string>> = {
  containerd: "unix:///run/containerd/containerd.sock",
  "cri-o": "unix:///var/run/crio/crio.sock",
};

export const RUNTIME_SERVICES: Readonly<Record<ContainerRuntime, string>> = {
  containerd: "containerd.service",
  "cri-o": "crio.service",
};

/**
 * The pod sandbox ("pause") image: the one the pinned containerd and Kubernetes 1.37 use
 * (kubeadm 1.37.2: PauseVersion 3.10.2), named here so the runtime never pulls another, and so a
 * cluster without a registry can load it (hardway:podImages).
 */
export const SANDBOX_IMAGE = "registry.k8s.io/pause:3.10.2";

/**
 * A registry's mirrors (config `registryMirrors`): the endpoints the runtime tries, in order,
 * before the registry itself, and the PEM of the CA that signed their certificates.
 */
export interface RegistryMirror {
  /** As image names start: docker.io, registry.k8s.io, registry.lab:5000. */
  readonly registry: string;
  /** http:// or https:// base URLs. */
  readonly endpoints: readonly string[];
  readonly caPem?: string;
}

/** The configured mirrors with each CA's PEM read from its file (`read` is fs.readFileSync). */
export function registryMirrors(
  configured: HardwayConfig["registryMirrors"],
  read: (file: string) => string,
): RegistryMirror[] {
  return Object.entries(configured).map(([registry, m]) => ({
    registry,
    endpoints: [...m.endpoints],
    ...(m.ca === undefined ? {} : { caPem: read(m.ca) }),
  }));
}

/** Where containerd's CRI plugin reads one directory of registry hosts files per registry. */
export const CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d";
/** Where CRI-O (containers/image) reads a CA per registry host, containers-certs.d(5). */
export const CONTAINERS_CERTS_DIR = "/etc/containers/certs.d";

/**
 * containerd 2.3 configuration: schema version 4, the one containerd 2.3 writes itself (older
 * versions are migrated at every start). The CRI plugin is split into runtime and images; the
 * images half reads registry mirrors from hosts files under `config_path`.
 */
export function renderContainerdConfig(): string {
  return renderToml({
    version: 4,
    plugins: {
      "io.containerd.cri.v1.images": {
        pinned_images: { sandbox: SANDBOX_IMAGE },
        registry: { config_path: CONTAINERD_CERTS_DIR },
      },
      "io.containerd.cri.v1.runtime": {
        containerd: {
          default_runtime_name: "runc",
          runtimes: {
            runc: {
              runtime_type: "io.containerd.runc.v2",
              options: { SystemdCgroup: true },
            },
          },
        },
        cni: { bin_dirs: [CNI_BIN_DIR], conf_dir: CNI_CONF_DIR },
      },
    },
  });
}

/** A file the runtime reads, by absolute path. */
export interface RuntimeFile {
  readonly path: string;
  readonly content: string;
}

/**
 * containerd's hosts files, hosts.toml(5): for each registry, its mirrors in order (pull and
 * resolve, so tags resolve there too), each https one checked against the mirror's CA. The
 * registry itself stays the last resort (no `server` override), so a mirror that lacks an image
 * does not break a pull that the internet could serve.
 */
export function containerdMirrorFiles(mirrors: readonly RegistryMirror[]): RuntimeFile[] {
  return mirrors.flatMap((mirror) => {
    const dir = `${CONTAINERD_CERTS_DIR}/${mirror.registry}`;
    const ca = mirror.caPem === undefined ? undefined : `${dir}/ca.crt`;
    const hosts = Object.fromEntries(
      mirror.endpoints.map((endpoint) => [
        endpoint,
        {
          capabilities: ["pull", "resolve"],
          ...(ca !== undefined && endpoint.startsWith("https://") ? { ca } : {}),
        },
      ]),
    );
    return [
      { path: `${dir}/hosts.toml`, content: renderToml({ host: hosts }) },
      ...(ca === undefined || mirror.caPem === undefined
        ? []
        : [{ path: ca, content: mirror.caPem }]),
    ];
  });
}

/** host[:port] of an endpoint URL, as containers-registries.conf(5) names a location. */
function hostOf(endpoint: string): string {
  return new URL(endpoint).host;
}

/**
 * CRI-O's registry CAs, containers-certs.d(5): one directory per mirror host. containers/image
 * reads every `*.crt` there as a CA for that host.
 */
export function crioMirrorFiles(mirrors: readonly RegistryMirror[]): RuntimeFile[] {
  return mirrors.flatMap((mirror) =>
    mirror.caPem === undefined
      ? []
      : mirror.endpoints
          .filter((e) => e.startsWith("https://"))
          .map((e) => ({
            path: `${CONTAINERS_CERTS_DIR}/${hostOf(e)}/${mirror.registry}-ca.crt`,
            content: mirror.caPem as string,
          })),
  );
}

/** containerd's own unit, the upstream one in structured form (it is not in the release tarball). */
export function containerdUnit(): ServiceUnit {
  return {
    unit: {
      description: "containerd container runtime",
      documentation: ["https://containerd.io"],
      after: ["network.target", "local-fs.target"],
    },
    service: {
      type: "notify",
      execStartPre: [["/sbin/modprobe", "overlay"]],
      execStart: [`${BIN_DIR}/containerd`],
      restart: "always",
      restartSec: 5,
      delegate: true,
      killMode: "process",
      oomScoreAdjust: -999,
      limitNoFile: "infinity",
      limitNProc: "infinity",
      tasksMax: "infinity",
    },
  };
}

export function renderContainerdUnit(): string {
  return renderServiceUnit(containerdUnit());
}

/** A CRI-O drop-in laid over the bundle's own crio.conf.d defaults. */
/**
 * The static CRI-O bundle puts conmon, crun and runc in /usr/libexec/crio, which is on no PATH,
 * so every runtime handler names its binaries; crun is the bundle's (and CRI-O's) default.
 */
export function renderCrioDropIn(): string {
  const handler = (binary: string) => ({
    runtime_path: `${CRIO_LIBEXEC_DIR}/${binary}`,
    runtime_type: "oci",
    runtime_root: `/run/${binary}`,
    monitor_path: `${CRIO_LIBEXEC_DIR}/conmon`,
  });
  return renderToml({
    crio: {
      runtime: {
        cgroup_manager: "systemd",
        default_runtime: "crun",
        pinns_path: `${BIN_DIR}/pinns`,
        runtimes: { crun: handler("crun"), runc: handler("runc") },
      },
      image: { pause_image: SANDBOX_IMAGE },
      network: { network_dir: CNI_CONF_DIR, plugin_dirs: [CNI_BIN_DIR] },
    },
  });
}

/** containers-registries.conf(5): where CRI-O looks up a short name such as coredns/coredns. */
export const REGISTRIES_CONF_PATH = "/etc/containers/registries.conf";

/**
 * The unqualified-search registries the CRI-O bundle's installer writes: without them CRI-O
 * refuses every short image name ("short-name resolution enforced"), and the charts use some.
 * Then one `[[registry]]` per mirrored registry, its mirrors tried in order before it; a plain
 * http mirror is `insecure`. (A mirror's path, if any, is part of its location.)
 */
export function renderRegistriesConf(mirrors: readonly RegistryMirror[] = []): string {
  return renderToml({
    "unqualified-search-registries": ["docker.io", "quay.io"],
    "short-name-mode": "permissive",
    ...(mirrors.length === 0
      ? {}
      : {
          registry: mirrors.map((m) => ({
            prefix: m.registry,
            location: m.registry,
            mirror: m.endpoints.map((endpoint): TomlTable => {
              const url = new URL(endpoint);
              const location = `${url.host}${url.pathname.replace(/\/+$/, "")}`;
              return url.protocol === "http:" ? { location, insecure: true } : { location };
            }),
          })),
        }),
  });
}

/** The image signature policy CRI-O refuses to start without. */
export const CONTAINERS_POLICY_PATH = "/etc/containers/policy.json";

export function renderContainersPolicy(): string {
  return JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }, null, 2) + "\n";
}

/** CRI-O's unit in the upstream shape (the bundle's install script would otherwise write it). */
export function crioUnit(): ServiceUnit {
  return {
    unit: {
      description: "Container Runtime Interface for OCI (CRI-O)",
      documentation: ["https://github.com/cri-o/cri-o"],
      wants: ["network-online.target"],
      after: ["network-online.target"],
    },
    service: {
      type: "notify",
      execStart: [`${BIN_DIR}/crio`],
      restart: "on-failure",
      restartSec: 10,
      limitNoFile: 1048576,
      limitNProc: 1048576,
      tasksMax: "infinity",
      oomScoreAdjust: -999,
    },
  };
}

export function renderCrioUnit(): string {
  return renderServiceUnit(crioUnit());
}

export function renderCrictlConfig(runtime: ContainerRuntime): string {
  return stringify({
    "runtime-endpoint": RUNTIME_ENDPOINTS[runtime],
    "image-endpoint": RUNTIME_ENDPOINTS[runtime],
    timeout: 10,
  });
}
