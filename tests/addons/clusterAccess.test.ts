/**
 * ClusterAccess under Pulumi mocks: the two bindings the API needs before any node joins, each
 * through the provider, deleted with etcd; and the certificate behind admin.conf on the control
 * nodes is bound to cluster-admin by group, not system:masters.
 */
import * as pulumi from "@pulumi/pulumi";
import { parseConfig } from "../../components/config/schema";
import { addressPlan } from "../../components/network/addressPlan";
import {
  CLUSTER_ADMINS_GROUP,
  NODE_ADMIN,
  certificateSpecs,
} from "../../components/pki/certificates";
import { RecordedResource, installMocks } from "../harness/mocks";

const BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding";

let resources: RecordedResource[];
const named = (name: string): RecordedResource => {
  const found = resources.find((r) => r.name === name);
  if (found === undefined) {
    throw new Error(`no resource ${name}`);
  }
  return found;
};

beforeAll(async () => {
  resources = await installMocks(pulumi);
  const { ClusterAccess } = await import("../../components/addons/clusterAccess");
  class StepStandIn extends pulumi.CustomResource {
    constructor(type: string, name: string) {
      super(`test:cluster:${type}`, name, {});
    }
  }
  new ClusterAccess("access", {
    kubeconfig: pulumi.secret("apiVersion: v1\nkind: Config\n"),
    apiReady: new StepStandIn("ApiHealth", "api-health"),
    clusterName: "hardway-test",
    clusterData: new StepStandIn("Etcd", "etcd"),
  });
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
});

describe("ClusterAccess", () => {
  it("lets kube-apiserver's kubelet client certificate use the kubelet API", () => {
    const binding = named("access-kube-apiserver-kubelet-client");
    expect(binding.type).toBe(BINDING);
    expect(binding.inputs.roleRef).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: "system:kubelet-api-admin",
    });
    expect(binding.inputs.subjects).toEqual([
      {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "User",
        name: "kube-apiserver-kubelet-client",
      },
    ]);
  });

  it("makes the control nodes' admin.conf cluster-admin by a revocable binding", () => {
    const binding = named("access-cluster-admins");
    expect(binding.inputs.roleRef).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: "cluster-admin",
    });
    expect(binding.inputs.subjects).toEqual([
      { apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: CLUSTER_ADMINS_GROUP },
    ]);
    const plan = addressPlan(parseConfig({}, { os: "linux", cpu: "x64" }));
    const nodeAdmin = certificateSpecs(plan).find((c) => c.id === NODE_ADMIN);
    expect(nodeAdmin?.organization).toBe(CLUSTER_ADMINS_GROUP);
    expect(nodeAdmin?.organization).not.toBe("system:masters");
  });

  it("goes through a provider gated on API health, and is deleted with etcd", () => {
    const provider = named("access-k8s");
    expect(provider.dependencies).toContain(named("api-health").urn);
    expect(provider.inputs.clusterIdentifier).toBe("hardway-test");
    // No request timeout given: the client's own defaults.
    expect(provider.inputs.kubeClientSettings).toBeUndefined();
    for (const name of ["access-kube-apiserver-kubelet-client", "access-cluster-admins"]) {
      expect(named(name).provider?.startsWith(provider.urn)).toBe(true);
      expect(named(name).deletedWith).toBe(named("etcd").urn);
    }
  });
});
