/**
 * The container runtime on every kubelet node: containerd + runc, or CRI-O (which brings its own
 * runc, crun and conmon). Both use the systemd cgroup driver, matching the kubelet's.
 */
import { stringify } from "yaml";
import { ContainerRuntime } from "../config/schema";
import { BIN_DIR, CNI_BIN_DIR, CNI_CONF_DIR, CRIO_LIBEXEC_DIR } from "./paths";
import { renderServiceUnit, ServiceUnit } from "./systemd";
import { renderToml } from "./toml";

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
 * containerd 2.3 configuration: schema version 4, the one containerd 2.3 writes itself (older
 * versions are migrated at every start). The CRI plugin is split into runtime and images.
 */
export function renderContainerdConfig(): string {
  return renderToml({
    version: 4,
    plugins: {
      "io.containerd.cri.v1.images": {
        pinned_images: { sandbox: SANDBOX_IMAGE },
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
 */
export function renderRegistriesConf(): string {
  return renderToml({
    "unqualified-search-registries": ["docker.io", "quay.io"],
    "short-name-mode": "permissive",
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
