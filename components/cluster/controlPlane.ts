/**
 * ControlPlane: kube-apiserver, kube-controller-manager and kube-scheduler on every control node,
 * each its own step so a changed flag re-runs only that daemon. The API servers start only once
 * etcd is healthy; the other two talk to their node's API server and retry until it answers.
 */
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import {
  renderApiServerUnit,
  renderAuditPolicy,
  renderControllerManagerUnit,
  renderSchedulerConfiguration,
  renderSchedulerUnit,
} from "../kubernetes/controlPlane";
import { NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import { AddressPlan } from "../network/addressPlan";
import { ArtifactCache } from "./artifactCache";
import { NodeScripts } from "./nodeScripts";
import { nodeStep, stageAll } from "./nodeStep";
import { PRIVATE, PkiMaterial, caCertFile, caKeyFile, leafFiles, textFile } from "./pkiFiles";

export interface ControlPlaneArgs {
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  readonly scripts: NodeScripts;
  readonly artifacts: ArtifactCache;
  /** Completes once every etcd member is healthy (Etcd.health). */
  readonly etcdHealth: pulumi.Resource;
  /**
   * kube-controller-manager's `--cluster-name`.
   * @default "hardway"
   */
  readonly clusterName?: string;
}

export interface ControlNodeSteps {
  readonly apiServer: remote.Command;
  readonly controllerManager: remote.Command;
  readonly scheduler: remote.Command;
}

export class ControlPlane extends pulumi.ComponentResource {
  /** By node name. */
  readonly nodes: Readonly<Record<string, ControlNodeSteps>>;
  readonly apiServers: readonly remote.Command[];

  constructor(name: string, args: ControlPlaneArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:ControlPlane", name, {}, opts);
    const { plan, pki } = args;
    const get = (artifact: string) => [args.artifacts.get(artifact, this)];
    const unit = (service: string) => `${SYSTEMD_DIR}/${service}`;
    const nodes: Record<string, ControlNodeSteps> = {};
    for (const node of plan.controls) {
      const target = args.scripts.target(node);
      const prefix = `${name}-${node.name}`;
      const apiServer = nodeStep(
        `${prefix}-kube-apiserver`,
        {
          target,
          step: "kube-apiserver",
          staged: stageAll(prefix, target, [...get("kube-apiserver"), ...get("kubectl")], this),
          files: [
            caCertFile(pki, "kubernetes-ca"),
            caCertFile(pki, "etcd-ca"),
            caCertFile(pki, "front-proxy-ca"),
            ...leafFiles(pki, "kube-apiserver"),
            ...leafFiles(pki, "kube-apiserver-kubelet-client"),
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
            // For kubectl on the node, as kubeadm leaves it.
            textFile(NODE_PATHS.kubeconfigs.admin, pki.kubeconfigs.admin, PRIVATE),
            textFile(unit("kube-apiserver.service"), renderApiServerUnit({ plan, node })),
          ],
          units: ["kube-apiserver.service"],
          dependsOn: [args.etcdHealth],
        },
        this,
      );
      const controllerManager = nodeStep(
        `${prefix}-kube-controller-manager`,
        {
          target,
          step: "kube-controller-manager",
          staged: stageAll(prefix, target, get("kube-controller-manager"), this),
          files: [
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
              renderControllerManagerUnit({ plan, clusterName: args.clusterName }),
            ),
          ],
          units: ["kube-controller-manager.service"],
        },
        this,
      );
      const scheduler = nodeStep(
        `${prefix}-kube-scheduler`,
        {
          target,
          step: "kube-scheduler",
          staged: stageAll(prefix, target, get("kube-scheduler"), this),
          files: [
            textFile(NODE_PATHS.kubeconfigs.scheduler, pki.kubeconfigs.scheduler, PRIVATE),
            textFile(NODE_PATHS.schedulerConfig, renderSchedulerConfiguration()),
            textFile(unit("kube-scheduler.service"), renderSchedulerUnit()),
          ],
          units: ["kube-scheduler.service"],
        },
        this,
      );
      nodes[node.name] = { apiServer, controllerManager, scheduler };
    }
    this.nodes = nodes;
    this.apiServers = Object.values(nodes).map((n) => n.apiServer);
    this.registerOutputs({});
  }
}
