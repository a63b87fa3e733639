import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { peerAddress, writeOciArchive } from "./ociArchives";

describe("peerAddress", () => {
  it.each([
    ["[::ffff:192.168.234.1]\n", "192.168.234.1"],
    ["::ffff:10.200.0.5", "10.200.0.5"],
    ["10.200.1.7\n", "10.200.1.7"],
  ])("reads %j as %s", (printed, address) => {
    expect(peerAddress(printed)).toBe(address);
  });
});

describe("writeOciArchive", () => {
  it("writes an OCI layout whose blobs, digests and layers tar, gzip and sha256sum agree on", () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "oci-"));
    try {
      // A base layer made by tar itself, as build-cilium-rootfs.sh makes its root file system.
      fs.mkdirSync(path.join(work, "base", "usr", "bin"), { recursive: true });
      fs.writeFileSync(path.join(work, "base", "usr", "bin", "tool"), "#!/bin/sh\n");
      execFileSync("tar", ["-C", path.join(work, "base"), "-cf", path.join(work, "base.tar"), "."]);
      const out = path.join(work, "image.oci.tar");
      writeOciArchive(
        {
          name: "quay.io/x/y:v1",
          baseLayers: [path.join(work, "base.tar")],
          files: [
            { path: "/opt/bin/prog", mode: 0o755, content: "binary" },
            { path: "/usr/bin/alias", mode: 0o777, link: "tool" },
          ],
          entrypoint: ["/opt/bin/prog"],
          env: ["PATH=/usr/bin"],
        },
        out,
      );
      const layout = path.join(work, "layout");
      fs.mkdirSync(layout);
      execFileSync("tar", ["-C", layout, "-xf", out]);
      const blob = (digest: string) => path.join(layout, "blobs", "sha256", digest.slice(7));
      const sha = (file: string) =>
        execFileSync("sha256sum", [file], { encoding: "utf8" }).slice(0, 64);
      for (const name of fs.readdirSync(path.join(layout, "blobs", "sha256"))) {
        expect(sha(path.join(layout, "blobs", "sha256", name))).toBe(name);
      }
      const index = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")) as {
        manifests: { digest: string; annotations: Record<string, string> }[];
      };
      expect(index.manifests[0].annotations["io.containerd.image.name"]).toBe("quay.io/x/y:v1");
      const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), "utf8")) as {
        config: { digest: string };
        layers: { digest: string; size: number }[];
      };
      const config = JSON.parse(fs.readFileSync(blob(manifest.config.digest), "utf8")) as {
        config: { Entrypoint: string[]; Env: string[] };
        rootfs: { diff_ids: string[] };
      };
      expect(config.config).toEqual({ Entrypoint: ["/opt/bin/prog"], Env: ["PATH=/usr/bin"] });
      expect(manifest.layers).toHaveLength(2);
      const listings = manifest.layers.map((layer, i) => {
        expect(layer.size).toBe(fs.statSync(blob(layer.digest)).size);
        const tar = execFileSync("gzip", ["-dc", blob(layer.digest)]);
        expect(`sha256:${crypto.createHash("sha256").update(tar).digest("hex")}`).toBe(
          config.rootfs.diff_ids[i],
        );
        return execFileSync("tar", ["-tvzf", blob(layer.digest)], { encoding: "utf8" });
      });
      // Bottom first: the base layer, then the files.
      expect(listings[0]).toMatch(/\.\/usr\/bin\/tool$/m);
      expect(listings[1]).toMatch(/^-rwxr-xr-x 0\/0 .* \.\/opt\/bin\/prog$/m);
      expect(listings[1]).toMatch(/\.\/usr\/bin\/alias -> tool$/m);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
