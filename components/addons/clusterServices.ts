/**
 * ClusterServices: what chapters 7-8 install through the Kubernetes API once it answers on the
 * VIP: Cilium (with cni=cilium), CoreDNS (typed objects, coredns.ts), MetalLB with its address
 * pool (created once MetalLB's webhook admits it: assets/cluster/wait-for-object.sh asks the
 * API from the host), the NFS provisioner as the default StorageClass (each of the three as
 * `hardway:services` says), and the control-plane role label (set from the host by the same
 * script). Everything else goes through ClusterAccess's provider, which also made the RBAC the
 * API needs earlier; how it previews, updates and deletes is in provider.ts.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ChartName, ChartSource, Charts, chartSource } from "../config/charts";
import { Cni, SERVICES, Service } from "../config/schema";
import { EnsuredScript } from "../host/ensured";
import { EMULATED_LEADER_ELECTION } from "../kubernetes/controlPlane";
import { AddressPlan } from "../network/addressPlan";
import { Coredns } from "./coredns";
import {
  ADDONS_NAMESPACE,
  CONTROL_PLANE_ROLE_LABEL,
  HelmValues,
  METALLB_L2_NAME,
  ciliumAgentsPath,
  ciliumValues,
  collectionPath,
  l2AdvertisementSpec,
  metallbPool,
  metallbValues,
  nfsProvisionerValues,
  overlayValues,
} from "./values";
import { objectOptions } from "./provider";

/** Seconds Helm waits for a release's resources; Cilium pulls the most and starts the slowest. */
export const RELEASE_TIMEOUTS = {
  cilium: 900,
  metallb: 600,
  nfsProvisioner: 600,
} as const;

/**
 * On emulated (TCG) guests: Cilium's agent compiles its BPF programs with clang on every node as
 * it starts, about ten times slower than on hardware, after pulling an image with clang in it.
 */
export const EMULATED_RELEASE_TIMEOUTS = { ...RELEASE_TIMEOUTS, cilium: 1800 } as const;

/** The host-side wait until the API admits an object or calls a node Ready (see its header). */
export const WAIT_FOR_OBJECT_SCRIPT = "cluster/wait-for-object.sh";
/** How often, and how far apart, the host asks: up to ten minutes. */
export const OBJECT_WAIT = { attempts: 60, intervalSeconds: 10 } as const;
/**
 * How long `up` waits for the controller manager's controllers: the HA run's leader started
 * one every 15-30 s, 13 minutes for 27 of them.
 */
export const CONTROLLERS_WAIT = { attempts: 180, intervalSeconds: 10 } as const;
/**
 * Emulated nodes: a node is Ready, and a pod runs, only once the CNI does. With Cilium, whose
 * agent pulls an image with clang in it and compiles its BPF programs on each node, the first
 * emulated Cilium run's control node was not Ready after 14 minutes. Up to 30 minutes for the
 * host's waits and CoreDNS's replicas.
 */
export const EMULATED_OBJECT_WAIT = { attempts: 180, intervalSeconds: 10 } as const;
export const EMULATED_COREDNS_READY_MINUTES = 30;
/**
 * Emulated nodes: seconds before the kubelet first asks MetalLB's controller and speakers whether
 * they live (the chart: 10). In the fourth emulated Cilium run the controller took 40 s from its
 * start to its webhook's certificate and had not opened its metrics port after 90 s, so its
 * liveness probe restarted it again and again until the release ran out of time.
 */
export const EMULATED_METALLB_LIVENESS_DELAY_SECONDS = 300;
/**
 * Emulated nodes: how long the host waits for every Cilium agent to be Ready. In the third
 * emulated Cilium run an agent was Ready 27 minutes after its pod was made: 3 minutes of image
 * pull, 5 of the operator registering its CRDs (each one it waits for 60 s at most, then exits
 * and starts again), 4-5 for each of bpf_host and bpf_lxc to compile, one restart of its own.
 */
export const EMULATED_CILIUM_AGENTS_WAIT = { attempts: 270, intervalSeconds: 10 } as const;

export interface ClusterServicesArgs {
  /** ClusterAccess.provider: gated on API health, named by the cluster. */
  readonly provider: k8s.Provider;
  /**
   * The admin kubeconfig (Pki.kubeconfigs.admin), the one the provider is built from: the host
   * asks the API with it whether MetalLB's webhook admits the pool yet.
   */
  readonly kubeconfig: pulumi.Input<string>;
  /** The etcd step (Etcd.members): every Kubernetes object here is deleted with it. */
  readonly clusterData: pulumi.Resource;
  readonly plan: AddressPlan;
  /** Cilium is installed only for `cilium`; with `bridge` the node CNI and kube-proxy serve. */
  readonly cni: Cni;
  /**
   * Which of CoreDNS, MetalLB and the NFS provisioner to install (config `services`).
   * @default all three
   */
  readonly services?: readonly Service[];
  /** Pinned repository, chart and version of each release (config `versions.charts`). */
  readonly charts: Charts;
  /**
   * Where every chart comes from instead of its own repository (config `chartMirror`).
   * @default "" (each chart's own repository)
   */
  readonly chartMirror?: string;
  /**
   * Helm values laid over hardway's own, per release (config `chartValues`, overlayValues).
   * @default {}
   */
  readonly chartValues?: Readonly<Partial<Record<ChartName, Readonly<HelmValues>>>>;
  /**
   * The nodes run emulated (TCG): Helm waits longer for Cilium (EMULATED_RELEASE_TIMEOUTS), its
   * operator keeps its lease as long as the controller manager (EMULATED_LEADER_ELECTION), and
   * the host's waits and CoreDNS's replicas get 30 minutes (EMULATED_OBJECT_WAIT), and its
   * wait for Cilium's agents 45 (EMULATED_CILIUM_AGENTS_WAIT); MetalLB's liveness probes start
   * after 5 minutes (EMULATED_METALLB_LIVENESS_DELAY_SECONDS).
   * @default false
   */
  readonly emulated?: boolean;
  /** The CoreDNS release (config `versions.coredns`). */
  readonly corednsVersion: string;
  /** The host directory exported over NFS (HostNetwork.exportDir). */
  readonly nfsPath: pulumi.Input<string>;
  /**
   * The kubelet step of each node, by node name (Kubelet.nodes). Releases wait for the first
   * node pods can run on, and each control node's label waits for its own.
   * @default {} (ordering then rests on the provider's API health gate alone)
   */
  readonly kubelets?: Readonly<Record<string, pulumi.Resource>>;
}

export interface ClusterServicesReleases {
  readonly cilium?: k8s.helm.v3.Release;
  readonly metallb?: k8s.helm.v3.Release;
  readonly nfsProvisioner?: k8s.helm.v3.Release;
}

export class ClusterServices extends pulumi.ComponentResource {
  readonly releases: ClusterServicesReleases;
  /** When CoreDNS is one of the services. */
  readonly coredns?: Coredns;
  /**
   * When MetalLB is one of the services: the wait until its webhook admits the pool, the address
   * pool and the L2 advertisement.
   */
  readonly metallb?: {
    readonly admission: EnsuredScript;
    readonly pool: k8s.apiextensions.CustomResource;
    readonly l2Advertisement: k8s.apiextensions.CustomResource;
  };
  /** By control node name: the node's role label, set once the API calls the node Ready. */
  readonly controlPlaneLabels: Readonly<Record<string, EnsuredScript>>;
  /** Done once the controller manager runs its controllers (the default ServiceAccount). */
  readonly controllers: EnsuredScript;
  /**
   * With Cilium: done once its agent runs Ready on every node (EMULATED_CILIUM_AGENTS_WAIT on
   * emulated nodes); CoreDNS and the other releases come after it.
   */
  readonly ciliumAgents?: EnsuredScript;

  constructor(name: string, args: ClusterServicesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:addons:ClusterServices", name, {}, opts);
    const { plan, charts } = args;
    const services = new Set<Service>(args.services ?? SERVICES);
    const kubelets = args.kubelets ?? {};
    const missing = plan.controls.filter((n) => args.kubelets && !(n.name in kubelets));
    if (missing.length > 0) {
      throw new pulumi.ResourceError(
        `kubelets has no entry for ${missing.map((n) => n.name).join(", ")}; pass Kubelet.nodes`,
        this,
      );
    }
    const k8sOpts = (dependsOn: pulumi.Resource[] = []) =>
      objectOptions(args.provider, this, args.clusterData, dependsOn);
    // A one-shot wait on the host (wait-for-object.sh): nothing to keep in place afterwards.
    const waitFor = (
      resourceName: string,
      untilArgs: string[],
      after: pulumi.Resource[],
      wait: { readonly attempts: number; readonly intervalSeconds: number } = args.emulated
        ? EMULATED_OBJECT_WAIT
        : OBJECT_WAIT,
    ) =>
      new EnsuredScript(
        resourceName,
        {
          script: WAIT_FOR_OBJECT_SCRIPT,
          args: [
            ...untilArgs,
            "--attempts",
            String(wait.attempts),
            "--interval",
            String(wait.intervalSeconds),
          ],
          stdin: args.kubeconfig,
          watch: false,
          // Each attempt: the interval and up to two requests of up to 40 s each (a label's
          // read and patch).
          timeoutSeconds: wait.attempts * (wait.intervalSeconds + 80) + 60,
        },
        { parent: this, dependsOn: after },
      );

    // Pods need one node that takes them: the first worker (a control node when there are no
    // workers, which are then untainted). Helm waits for readiness itself, so the other
    // kubelets may still be joining, and one failed worker does not hold back every release.
    const podNode = (plan.workers[0] ?? plan.controls[0]).name;
    const podKubelet = kubelets[podNode] === undefined ? [] : [kubelets[podNode]];
    const release = (
      key: ChartName,
      releaseName: string,
      values: pulumi.Input<HelmValues>,
      after: pulumi.Resource[],
    ) =>
      new k8s.helm.v3.Release(
        `${name}-${releaseName}`,
        releaseArgs(
          releaseName,
          chartSource(charts[key], args.chartMirror ?? ""),
          pulumi.output(values).apply((v) => overlayValues(v, args.chartValues?.[key] ?? {})),
          (args.emulated ? EMULATED_RELEASE_TIMEOUTS : RELEASE_TIMEOUTS)[key],
        ),
        k8sOpts([...podKubelet, ...after]),
      );

    // Every other workload needs pod networking, which with Cilium exists only once its agent
    // runs Ready on the node: the release's own wait does not see that (wait-for-object.sh,
    // `rolled-out`), and the next releases' timeouts would run while no pod can start.
    let cilium: k8s.helm.v3.Release | undefined;
    if (args.cni === "cilium") {
      const values = ciliumValues(
        plan,
        { metallb: services.has("metallb") },
        args.emulated ? EMULATED_LEADER_ELECTION : undefined,
      );
      cilium = release("cilium", "cilium", values, []);
      this.ciliumAgents = waitFor(
        `${name}-cilium-agents`,
        [
          "--until",
          "rolled-out",
          "--path",
          ciliumAgentsPath(overlayValues(values, args.chartValues?.cilium ?? {})),
        ],
        [cilium],
        args.emulated ? EMULATED_CILIUM_AGENTS_WAIT : OBJECT_WAIT,
      );
    }
    const afterCni = cilium && this.ciliumAgents ? [cilium, this.ciliumAgents] : [];
    this.coredns = services.has("coredns")
      ? new Coredns(
          `${name}-coredns`,
          {
            plan,
            version: args.corednsVersion,
            provider: args.provider,
            clusterData: args.clusterData,
            after: [...podKubelet, ...afterCni],
            readyTimeoutMinutes: args.emulated ? EMULATED_COREDNS_READY_MINUTES : undefined,
          },
          { parent: this },
        )
      : undefined;
    const metallb = services.has("metallb")
      ? release(
          "metallb",
          "metallb",
          metallbValues(plan, args.emulated ? EMULATED_METALLB_LIVENESS_DELAY_SECONDS : undefined),
          afterCni,
        )
      : undefined;
    const nfsProvisioner = services.has("nfsProvisioner")
      ? release(
          "nfsProvisioner",
          "nfs-provisioner",
          pulumi
            .output(args.nfsPath)
            .apply((exportDir) => nfsProvisionerValues({ plan, exportDir })),
          afterCni,
        )
      : undefined;
    this.releases = { cilium, metallb, nfsProvisioner };

    if (metallb !== undefined) {
      // MetalLB's admission webhook fails every pool until it answers, and the release's wait
      // does not cover it: the controller is Ready once its metrics answer. So the host first
      // asks the API for a dry-run create of the pool until the webhook admits it (a failed
      // webhook call would fail the pool for good: the provider does not retry it).
      const poolObject = metallbPool(plan);
      const admission = waitFor(
        `${name}-metallb-admission`,
        [
          "--until",
          "admitted",
          "--path",
          collectionPath(poolObject.apiVersion, ADDONS_NAMESPACE, "ipaddresspools"),
          "--body",
          JSON.stringify(poolObject),
        ],
        [metallb],
      );
      const pool = new k8s.apiextensions.CustomResource(
        `${name}-metallb-pool`,
        poolObject,
        k8sOpts([metallb, admission]),
      );
      const l2Advertisement = new k8s.apiextensions.CustomResource(
        `${name}-metallb-l2`,
        {
          apiVersion: "metallb.io/v1beta1",
          kind: "L2Advertisement",
          metadata: { name: METALLB_L2_NAME, namespace: ADDONS_NAMESPACE },
          spec: pool.metadata.name.apply((poolName) => l2AdvertisementSpec([poolName])),
        },
        k8sOpts([metallb, admission]),
      );
      this.metallb = { admission, pool, l2Advertisement };
    }

    // `kubectl label node controlN node-role.kubernetes.io/control-plane=`, as the host asks it
    // (wait-for-object.sh --until labelled): once the API calls the node Ready (registered by
    // its kubelet, past its first updates), as kubeadm marks a control plane node, and again
    // for as long as the API does not finish the patch. Not a NodePatch resource: a patch is a
    // server-side apply, which would create a Node its kubelet then finds taken; and in the HA
    // runs a patch of a Ready node outlasted the API server's 34 s deadline for a write, a 504
    // the Kubernetes provider does not retry, failing the whole `up`.
    const labels: Record<string, EnsuredScript> = {};
    for (const node of plan.controls) {
      const kubelet = kubelets[node.name];
      labels[node.name] = waitFor(
        `${name}-role-${node.name}`,
        [
          "--until",
          "labelled",
          "--path",
          `/api/v1/nodes/${node.name}`,
          "--label",
          `${CONTROL_PLANE_ROLE_LABEL}=`,
        ],
        kubelet ? [kubelet] : [],
      );
    }
    this.controlPlaneLabels = labels;

    // `pulumi up` ends once the controller manager runs its controllers: its serviceaccount
    // controller has made the default namespace's ServiceAccount (without it no pod can be
    // created in a new namespace). Its leader starts them one after another, minutes on
    // starved emulated guests; nothing here waits for it, only the end of the `up`.
    this.controllers = waitFor(
      `${name}-controllers`,
      ["--until", "present", "--path", "/api/v1/namespaces/default/serviceaccounts/default"],
      Object.values(labels),
      CONTROLLERS_WAIT,
    );

    this.registerOutputs({
      cilium: cilium?.status,
      metallb: metallb?.status,
      nfsProvisioner: nfsProvisioner?.status,
    });
  }
}

/**
 * Helm release settings: pinned chart, fixed release name (the provisioner name derives from
 * it), and a wait for readiness that undoes a release which never got there, so the next
 * `pulumi up` installs it afresh instead of upgrading a broken one.
 */
export function releaseArgs(
  releaseName: string,
  source: ChartSource,
  values: pulumi.Input<HelmValues>,
  timeoutSeconds: number,
): k8s.helm.v3.ReleaseArgs {
  return {
    name: releaseName,
    namespace: ADDONS_NAMESPACE,
    chart: source.chart,
    ...(source.version === undefined ? {} : { version: source.version }),
    ...(source.repo === undefined ? {} : { repositoryOpts: { repo: source.repo } }),
    values,
    skipAwait: false,
    atomic: true,
    timeout: timeoutSeconds,
  };
}
