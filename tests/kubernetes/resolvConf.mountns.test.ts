/**
 * The kubelet's resolv.conf link (LINK_RESOLV_CONF, the unit's ExecStartPre) as systemd runs it,
 * inside a mount namespace whose /run and /var/lib are fresh tmpfs mounts: on a node without
 * systemd-resolved (Debian) it points at /etc/resolv.conf, with resolved (Ubuntu) at resolved's
 * file. Found on the TCG cluster: with resolved's path fixed in the config, every pod sandbox
 * on the Debian image failed.
 */
import { spawnSync } from "node:child_process";
import { LINK_RESOLV_CONF, kubeletUnit } from "../../components/kubernetes/kubelet";
import { NODE_PATHS } from "../../components/kubernetes/paths";
import { plan } from "./fixtures";
import { mountNamespaceSkipReason } from "../harness/namespaces";
import { describeIfAvailable } from "../harness/prerequisites";

const skip = mountNamespaceSkipReason();

/** Runs the link command after `setup`, in a private mount namespace; prints where it points. */
function linkAfter(setup: string): string {
  const [shell, flag, command] = LINK_RESOLV_CONF;
  const script = [
    "set -e",
    "mount -t tmpfs tmpfs /run",
    "mount -t tmpfs tmpfs /var/lib",
    setup,
    `${shell} ${flag} '${command}'`,
    `readlink ${NODE_PATHS.kubeletResolvConf}`,
  ].join("\n");
  const result = spawnSync(
    "unshare",
    ["--mount", "--propagation", "private", "bash", "-c", script],
    {
      encoding: "utf8",
    },
  );
  expect(result.stderr).toBe("");
  return result.stdout.trim();
}

describeIfAvailable(skip, "kubelet resolv.conf link", () => {
  it("points at /etc/resolv.conf on a node without systemd-resolved", () => {
    expect(linkAfter("true")).toBe("/etc/resolv.conf");
  });

  it("points at resolved's file with the real servers when systemd-resolved runs", () => {
    expect(
      linkAfter(
        "mkdir -p /run/systemd/resolve && echo 'nameserver 10.0.0.2' > /run/systemd/resolve/resolv.conf",
      ),
    ).toBe("/run/systemd/resolve/resolv.conf");
  });

  it("runs before every kubelet start", () => {
    const p = plan();
    const unit = kubeletUnit({ plan: p, node: p.workers[0], runtime: "containerd", cni: "bridge" });
    expect(unit.service.execStartPre).toEqual([LINK_RESOLV_CONF]);
  });
});
