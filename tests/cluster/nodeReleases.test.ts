/**
 * NodeReleases' decisions: what a copy leaves on the VM, and that the report of the last copy
 * never makes a diff by itself.
 */
import {
  NodeReleasesState,
  copyLine,
  nodeReleasesProvider,
  releasesInputs,
  staleFiles,
} from "../../components/cluster/nodeReleases";

const cache = "/home/ubuntu/.cache/hardway/artifacts";
const file = (name: string, version: string) => ({
  localPath: `/cache/${name}/${version}/amd64/${name}`,
  remotePath: `${cache}/${name}/${version}/amd64/${name}`,
});
const state: NodeReleasesState = {
  node: "worker0",
  host: "192.168.234.21",
  user: "ubuntu",
  privateKey: "KEY",
  hostKey: "ssh-ed25519 AAAA",
  instance: "i-1",
  files: [file("kubelet", "1.37.2"), file("kube-proxy", "1.37.2")],
};

describe("NodeReleases", () => {
  it("deletes the VM's release files the list no longer names, the old version's", () => {
    const present = [
      file("kubelet", "1.36.5").remotePath,
      file("kubelet", "1.37.2").remotePath,
      file("kube-proxy", "1.37.2").remotePath,
      "",
    ];
    expect(staleFiles(present, state.files)).toEqual([file("kubelet", "1.36.5").remotePath]);
  });

  it("says per node what a copy moved and how long it took", () => {
    expect(copyLine("control1", { files: 7, bytes: 512_300_000, seconds: 716.6 })).toBe(
      "releases on control1: 7 files, 512 MB in 717 s",
    );
    expect(copyLine("worker0", { files: 1, bytes: 80_000_000, seconds: 9 })).toBe(
      "releases on worker0: 1 file, 80 MB in 9 s",
    );
    expect(copyLine("worker0", { files: 0, bytes: 0, seconds: 2.2 })).toBe(
      "releases on worker0: every file already there (2 s)",
    );
  });

  it("sees no change when only the last copy's report differs", async () => {
    const copied = { ...state, copied: { files: 2, bytes: 123, seconds: 4 } };
    expect(releasesInputs(copied)).toEqual(state);
    expect((await nodeReleasesProvider.diff!("releases@worker0", copied, state)).changes).toBe(
      false,
    );
  });

  it("copies again for a new version or a new VM, in place", async () => {
    for (const news of [
      { ...state, files: [file("kubelet", "1.38.0")] },
      { ...state, instance: "i-2" },
    ]) {
      expect(await nodeReleasesProvider.diff!("releases@worker0", state, news)).toMatchObject({
        changes: true,
        replaces: [],
      });
    }
  });
});
