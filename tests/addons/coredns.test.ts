/**
 * CoreDNS's objects: as data (every address and name from the address plan, the selectors agree),
 * the Corefile as text, and then applied to a real kube-apiserver of the pinned version
 * (server-side apply with strict field validation, as the Pulumi provider sends them): every
 * field is one the API knows and every reference is admitted, and the Service gets the plan's
 * cluster DNS address.
 */
import { COREDNS_IMAGE, corednsObjects, renderCorefile } from "../../components/addons/coredns";
import { defaultVersions } from "../../components/config/defaults";
import { parseConfig } from "../../components/config/schema";
import { AddressPlan, addressPlan } from "../../components/network/addressPlan";
import { ApiServerLab, apiServerLabMissing } from "../kubernetes/apiServerLab";
import { describeIfAvailable } from "../harness/prerequisites";

const HOST = { os: "linux", cpu: "x64" } as const;
const planFor = (raw: Record<string, unknown>): AddressPlan => addressPlan(parseConfig(raw, HOST));
const standard = planFor({});
const moved = planFor({ serviceCidr: "10.96.0.0/16", workers: 0 });
const objects = (plan: AddressPlan) => corednsObjects({ plan, version: defaultVersions.coredns });

/** The value at a dotted path of an object (plain data: these objects hold no Outputs). */
function at(value: unknown, dotted: string): unknown {
  return dotted
    .split(".")
    .reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], value);
}

describe("CoreDNS objects", () => {
  it("serves on the plan's cluster DNS address", () => {
    expect(at(objects(standard).service, "spec.clusterIP")).toBe("10.32.0.10");
    expect(at(objects(moved).service, "spec.clusterIP")).toBe("10.96.0.10");
  });

  it("runs the pinned image, two replicas, spread over the nodes", () => {
    const deployment = objects(standard).deployment;
    expect(at(deployment, "spec.replicas")).toBe(2);
    expect(at(deployment, "spec.template.spec.containers.0.image")).toBe(
      `${COREDNS_IMAGE}:v${defaultVersions.coredns}`,
    );
    expect(at(deployment, "spec.template.spec.topologySpreadConstraints")).toEqual([
      expect.objectContaining({ topologyKey: "kubernetes.io/hostname", maxSkew: 1 }),
    ]);
  });

  it("tolerates the control-plane taint as kubeadm's does, with or without workers", () => {
    const keys = (plan: AddressPlan) =>
      (at(objects(plan).deployment, "spec.template.spec.tolerations") as { key: string }[]).map(
        (t) => t.key,
      );
    expect(keys(standard)).toEqual(["CriticalAddonsOnly", "node-role.kubernetes.io/control-plane"]);
    expect(keys(moved)).toEqual(["CriticalAddonsOnly", "node-role.kubernetes.io/control-plane"]);
  });

  it("keeps a disruption budget only where an evicted replica has a second node to go to", () => {
    // One control node and nothing else: a budget would block every drain of that node.
    expect(objects(planFor({ controlPlanes: 1, workers: 0 })).podDisruptionBudget).toBeUndefined();
    expect(objects(planFor({ controlPlanes: 1, workers: 1 })).podDisruptionBudget).toBeDefined();
    expect(objects(planFor({ controlPlanes: 3, workers: 0 })).podDisruptionBudget).toBeDefined();
  });

  it("selects its own pods the same way in the Deployment, the Service and the budget", () => {
    const o = objects(standard);
    const labels = at(o.deployment, "spec.template.metadata.labels");
    expect(labels).toEqual({ "k8s-app": "kube-dns" });
    expect(at(o.deployment, "spec.selector.matchLabels")).toEqual(labels);
    expect(at(o.service, "spec.selector")).toEqual(labels);
    expect(at(o.podDisruptionBudget, "spec.selector.matchLabels")).toEqual(labels);
  });

  it("asks the node's resolver, not itself, and mounts the Corefile it is given", () => {
    expect(at(objects(standard).deployment, "spec.template.spec.dnsPolicy")).toBe("Default");
    expect(objects(standard).configMap.data).toEqual({ Corefile: renderCorefile("cluster.local") });
  });
});

describe("the Corefile", () => {
  const corefile = renderCorefile("lab.example");

  it("answers the cluster domain and reverse zones from the API, the rest from the node", () => {
    expect(corefile).toContain("    kubernetes lab.example in-addr.arpa ip6.arpa {\n");
    expect(corefile).toContain("    forward . /etc/resolv.conf {\n");
  });

  it("does not cache answers for the cluster domain, so a new Service resolves at once", () => {
    expect(corefile).toMatch(
      /cache 30 \{\n +disable success lab\.example\n +disable denial lab\.example\n/,
    );
  });

  it("balances its braces", () => {
    expect(corefile.split("{").length).toBe(corefile.split("}").length);
  });
});

describeIfAvailable(apiServerLabMissing(), "CoreDNS objects on a real kube-apiserver", () => {
  const lab = new ApiServerLab();
  beforeAll(() => lab.start({ serviceCidr: moved.serviceCidr }), 240_000);
  afterAll(() => lab.stop());

  it("are accepted, every field known, and the Service takes the cluster DNS address", () => {
    const o = objects(moved);
    const document = {
      apiVersion: "v1",
      kind: "List",
      items: [
        o.serviceAccount,
        o.clusterRole,
        o.clusterRoleBinding,
        o.configMap,
        o.deployment,
        o.service,
        o.podDisruptionBudget,
      ],
    };
    const applied = lab.kubectl(
      ["apply", "--server-side", "--field-manager=hardway-test", "--validate=strict", "-f", "-"],
      JSON.stringify(document),
    );
    expect({ status: applied.status, stderr: applied.stderr }).toEqual({ status: 0, stderr: "" });
    const clusterIp = lab.kubectl([
      "get",
      "service",
      "kube-dns",
      "-n",
      "kube-system",
      "-o",
      "jsonpath={.spec.clusterIP}",
    ]);
    expect(clusterIp.stdout).toBe("10.96.0.10");
  }, 120_000);

  it("would be refused with a field the API does not know (the check has teeth)", () => {
    const o = objects(moved);
    const misspelt = {
      ...o.configMap,
      metadata: { name: "typo", namespace: "kube-system" },
      dta: {},
    };
    const applied = lab.kubectl(
      ["apply", "--server-side", "--field-manager=hardway-test", "--validate=strict", "-f", "-"],
      JSON.stringify(misspelt),
    );
    expect(applied.status).not.toBe(0);
    expect(applied.stderr).toContain(".dta: field not declared in schema");
  }, 120_000);
});
