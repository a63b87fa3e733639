/**
 * `pulumi preview` of the whole program on a fresh stack, in every variant, as a user runs it
 * before the first `up`: it must succeed with no error on a machine with no hypervisor, no
 * internet and no host preparation.
 */
import { newStack, parsePreview, reportTime } from "./engine";

const variants: [string, Record<string, string>][] = [
  ["default", {}],
  ["arm64", { "hardway:arch": "arm64" }],
  ["cri-o", { "hardway:containerRuntime": "cri-o" }],
  ["cilium", { "hardway:cni": "cilium" }],
  ["1 control plane", { "hardway:controlPlanes": "1" }],
  ["5 control planes", { "hardway:controlPlanes": "5" }],
  ["0 workers", { "hardway:workers": "0" }],
  [
    "air-gapped (cilium, MetalLB only, charts and images from mirrors)",
    {
      "hardway:cni": "cilium",
      "hardway:services": '["metallb"]',
      "hardway:chartMirror": "oci://mirror.lab:5000/charts",
      "hardway:registryMirrors": JSON.stringify({
        "quay.io": { endpoints: ["http://mirror.lab:5000"] },
        "registry.k8s.io": { endpoints: ["http://mirror.lab:5000"] },
      }),
    },
  ],
];

describe("pulumi preview on a fresh stack", () => {
  it.each(variants)("plans the %s cluster without an error", (what, config) => {
    const stack = newStack("preview", config);
    try {
      const preview = stack.must(["preview", "--json"]);
      const summary = parsePreview(preview.stdout);
      reportTime(`preview (${what})`, preview.seconds);
      expect(summary.errors).toEqual([]);
      const ops = new Set(summary.steps.map((s) => s.op));
      expect([...ops]).toEqual(["create"]);
      expect(summary.changes.create).toBeGreaterThan(60);
    } finally {
      stack.dispose();
    }
  });
});
