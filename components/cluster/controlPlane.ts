/**
 * ControlPlane: kube-apiserver, kube-controller-manager and kube-scheduler on every control node,
 * in the order the version-skew policy asks of an upgrade (no controller manager or scheduler
 * may be newer than an API server it talks to). The API servers are one step that rolls over the
 * control nodes: it starts only once etcd is healthy, and an update restarts one server at a
 * time, the next only after the last answers /readyz and serves its OpenAPI document, so the API
 * behind the load balancer never goes away. Then the controller managers, one node after
 * another, and beside them the schedulers likewise: each is a step of its own, waiting for the
 * one before, so they never all restart at once.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  API_START_TIMEOUT_SECONDS,
  LeaderElectionTiming,
  renderApiServerUnit,
  renderAuditPolicy,
  renderAuthenticationConfig,
  renderControllerManagerUnit,
  renderSchedulerConfiguration,
  renderSchedulerUnit,
} from "../kubernetes/controlPlane";
import { CA_FILES, NODE_PATHS, SYSTEMD_DIR, certFiles } from "../kubernetes/paths";
import { AddressPlan } from "../network/addressPlan";
import { APISERVER_KUBELET_CLIENT } from "../pki/certificates";
import { ArtifactCache } from "./artifactCache";
import { ClusterNodes, NodeStep, targetFor } from "./nodeStep";
import { PRIVATE, PkiMaterial, caCertFile, caKeyFile, leafFiles, textFile } from "./pkiFiles";

export interface ControlPlaneArgs {
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  readonly nodes: ClusterNodes;
  readonly artifacts: ArtifactCache;
  /** Completes once every etcd member is healthy (Etcd.members). */
  readonly etcd: pulumi.Resource;
  /**
   * kube-controller-manager's `--cluster-name`.
   * @default "hardway"
   */
  readonly clusterName?: string;
  /** The Kubernetes release the API servers run: an update may not skip or go back a minor. */
  readonly kubernetesVersion: string;
  /** The controller managers' and schedulers' leader election. @default their own */
  readonly leaderElection?: LeaderElectionTiming;
  /** kube-apiserver's `--request-timeout` (ApiServerArgs). @default the server's own */
  readonly apiRequestTimeoutSeconds?: number;
  /** kube-apiserver's etcd check timeouts (ApiServerArgs). @default the server's own */
  readonly etcdCheckTimeoutSeconds?: number;
  /** How long an API server may take to be ready after a (re)start. @default API_START_TIMEOUT_SECONDS */
  readonly apiStartTimeoutSeconds?: number;
}

/** Seconds between api-ready.sh's /readyz probes; it probes for the API start timeout. */
const API_READY_INTERVAL_SECONDS = 5;

export class ControlPlane extends pulumi.ComponentResource {
  /** kube-apiserver on every control node, rolled one at a time. */
  readonly apiServers: NodeStep;
  /** By node name. */
  readonly controllerManagers: Readonly<Record<string, NodeStep>>;
  readonly schedulers: Readonly<Record<string, NodeStep>>;

  constructor(name: string, args: ControlPlaneArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:ControlPlane", name, {}, opts);
    const { plan, pki, nodes } = args;
    const unit = (service: string) => `${SYSTEMD_DIR}/${service}`;
    this.apiServers = new NodeStep(
      `${name}-kube-apiserver`,
      {
        step: "kube-apiserver",
        nodes,
        targets: plan.controls.map((node) =>
          targetFor(nodes, node, [
            caCertFile(pki, "kubernetes-ca"),
            caCertFile(pki, "etcd-ca"),
            caCertFile(pki, "front-proxy-ca"),
            ...leafFiles(pki, "kube-apiserver"),
            ...leafFiles(pki, APISERVER_KUBELET_CLIENT),
            ...leafFiles(pki, "kube-apiserver-etcd-client"),
            ...leafFiles(pki, "front-proxy-client"),
            textFile(NODE_PATHS.serviceAccountPublicKey, pki.serviceAccount.publicKeyPem),
            textFile(
              NODE_PATHS.serviceAccountPrivateKey,
              pki.serviceAccount.privateKeyPem,
              PRIVATE,
            ),
            textFile(NODE_PATHS.encryptionConfig, pki.encryptionConfig, PRIVATE),
            textFile(NODE_PATHS.auditPolicy, renderAuditPolicy()),
            textFile(NODE_PATHS.authenticationConfig, renderAuthenticationConfig()),
            // admin.conf for kubectl on the node, as kubeadm leaves it: cluster-admin through a
            // binding (ClusterAccess) that can be revoked, not system:masters.
            textFile(NODE_PATHS.kubeconfigs.admin, pki.kubeconfigs.nodeAdmin, PRIVATE),
            textFile(
              unit("kube-apiserver.service"),
              renderApiServerUnit({
                plan,
                node,
                requestTimeoutSeconds: args.apiRequestTimeoutSeconds,
                etcdCheckTimeoutSeconds: args.etcdCheckTimeoutSeconds,
              }),
            ),
          ]),
        ),
        artifacts: args.artifacts.get(["kube-apiserver", "kubectl"], this),
        release: { software: "Kubernetes", version: args.kubernetesVersion },
        units: ["kube-apiserver.service"],
        // The first API server of a new cluster writes its bootstrap objects (RBAC roles and
        // bindings, priority classes) alone, as kubeadm's init comes before any join; the others
        // then find them written. Three racing to write them each took 8-10 s a write on
        // emulated guests (set only with several control nodes: one node's state stays as is).
        ...(plan.controls.length > 1 ? { firstAlone: true } : {}),
        // The readiness wait's bound: each /readyz attempt may take its 5 s curl timeout beside
        // the interval, and the OpenAPI document as long again.
        ...(args.apiStartTimeoutSeconds === undefined
          ? {}
          : { timeoutSeconds: 2 * args.apiStartTimeoutSeconds + 600 }),
        // The unit has no start timeout (apiServerUnit): api-ready.sh bounds the wait.
        startNoBlock: ["kube-apiserver.service"],
        // Ready once /readyz answers ok and the server has built its OpenAPI document, which
        // every client reads first. Any authenticated client may read it; the server's own
        // kubelet client certificate is the one on this node as plain files.
        readiness: [
          "bash",
          "api-ready.sh",
          "--cacert",
          CA_FILES["kubernetes-ca"].cert,
          "--client-cert",
          certFiles(APISERVER_KUBELET_CLIENT).cert,
          "--client-key",
          certFiles(APISERVER_KUBELET_CLIENT).key,
          "--attempts",
          String(
            Math.ceil(
              (args.apiStartTimeoutSeconds ?? API_START_TIMEOUT_SECONDS) /
                API_READY_INTERVAL_SECONDS,
            ),
          ),
          "--interval",
          String(API_READY_INTERVAL_SECONDS),
        ],
      },
      { parent: this, dependsOn: [args.etcd] },
    );
    const controllerManagers: Record<string, NodeStep> = {};
    const schedulers: Record<string, NodeStep> = {};
    let previous: NodeStep = this.apiServers;
    for (const node of plan.controls) {
      previous = controllerManagers[node.name] = new NodeStep(
        `${name}-${node.name}-kube-controller-manager`,
        {
          step: "kube-controller-manager",
          nodes,
          targets: [
            targetFor(nodes, node, [
              caCertFile(pki, "kubernetes-ca"),
              caKeyFile(pki, "kubernetes-ca"),
              caCertFile(pki, "front-proxy-ca"),
              textFile(
                NODE_PATHS.serviceAccountPrivateKey,
                pki.serviceAccount.privateKeyPem,
                PRIVATE,
              ),
              textFile(
                NODE_PATHS.kubeconfigs.controllerManager,
                pki.kubeconfigs.controllerManager,
                PRIVATE,
              ),
              textFile(
                unit("kube-controller-manager.service"),
                renderControllerManagerUnit({
                  plan,
                  clusterName: args.clusterName,
                  leaderElection: args.leaderElection,
                }),
              ),
            ]),
          ],
          artifacts: args.artifacts.get(["kube-controller-manager"], this),
          units: ["kube-controller-manager.service"],
        },
        { parent: this, dependsOn: [previous] },
      );
    }
    previous = this.apiServers;
    for (const node of plan.controls) {
      previous = schedulers[node.name] = new NodeStep(
        `${name}-${node.name}-kube-scheduler`,
        {
          step: "kube-scheduler",
          nodes,
          targets: [
            targetFor(nodes, node, [
              textFile(NODE_PATHS.kubeconfigs.scheduler, pki.kubeconfigs.scheduler, PRIVATE),
              textFile(
                NODE_PATHS.schedulerConfig,
                renderSchedulerConfiguration({ plan, leaderElection: args.leaderElection }),
              ),
              textFile(unit("kube-scheduler.service"), renderSchedulerUnit()),
            ]),
          ],
          artifacts: args.artifacts.get(["kube-scheduler"], this),
          units: ["kube-scheduler.service"],
        },
        { parent: this, dependsOn: [previous] },
      );
    }
    this.controllerManagers = controllerManagers;
    this.schedulers = schedulers;
    this.registerOutputs({});
  }
}
