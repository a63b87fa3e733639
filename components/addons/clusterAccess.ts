/**
 * ClusterAccess: the RBAC the cluster needs as soon as its API answers, before any node joins.
 * - kube-apiserver's kubelet client (logs, exec, port-forward) may use the kubelet API;
 * - the group of admin.conf on the control nodes is cluster-admin. That file is not
 *   system:masters (kubeadm's admin.conf / super-admin.conf split), so deleting this binding
 *   revokes it; the stack's own `kubeconfig` output stays system:masters.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { APISERVER_KUBELET_CLIENT, CLUSTER_ADMINS_GROUP } from "../pki/certificates";
import { ClusterProviderArgs, clusterProvider, objectOptions } from "./provider";

/** Built-in ClusterRole for the kubelet API: proxy, logs, exec, stats. */
export const KUBELET_API_ADMIN_ROLE = "system:kubelet-api-admin";

export type ClusterAccessArgs = ClusterProviderArgs;

export class ClusterAccess extends pulumi.ComponentResource {
  readonly provider: k8s.Provider;
  readonly kubeletApiAccess: k8s.rbac.v1.ClusterRoleBinding;
  readonly clusterAdmins: k8s.rbac.v1.ClusterRoleBinding;

  constructor(name: string, args: ClusterAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:addons:ClusterAccess", name, {}, opts);
    this.provider = clusterProvider(`${name}-k8s`, args, this);
    const options = objectOptions(this.provider, this, args.clusterData);
    const binding = (bindingName: string, role: string, kind: string, subject: string) =>
      new k8s.rbac.v1.ClusterRoleBinding(
        `${name}-${bindingName}`,
        {
          metadata: { name: `hardway:${bindingName}` },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
          subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind, name: subject }],
        },
        options,
      );
    this.kubeletApiAccess = binding(
      APISERVER_KUBELET_CLIENT,
      KUBELET_API_ADMIN_ROLE,
      "User",
      APISERVER_KUBELET_CLIENT,
    );
    this.clusterAdmins = binding("cluster-admins", "cluster-admin", "Group", CLUSTER_ADMINS_GROUP);
    this.registerOutputs({});
  }
}
