/**
 * node-step.sh as it runs on a node, without --root: inside a mount namespace where /usr/local,
 * /var/lib, /etc/kubernetes and /etc/systemd/system are fresh tmpfs mounts, with a stand-in
 * `systemctl` on PATH that records what it is asked. Nothing outside the namespace is touched.
 *
 * It shows the update and destroy behaviours a real node depends on: apply converges without
 * restarting what did not change; remove completes (it used to abort on ${root:?} without
 * --root, after the units and binaries were already gone); remove unmounts what a kubelet had
 * mounted below its state directory before deleting it, so the data behind the mount (an NFS
 * volume) survives; a binary two steps installed stays until the last one goes.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileBundle } from "../../components/cluster/remoteFiles";
import { mountNamespaceSkipReason } from "../harness/namespaces";
import { describeIfAvailable } from "../harness/prerequisites";

const NODE_ASSETS = path.resolve(__dirname, "../../assets/node");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "hw-node-step-ns-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const skip = mountNamespaceSkipReason();

/**
 * Runs `script` (bash) in one fresh mount namespace; returns its output. The namespace, its
 * tmpfs mounts and everything on them vanish when it exits, so each call starts from `setup`.
 */
function inNamespace(script: string): { status: number | null; output: string } {
  const fake = path.join(work, "bin");
  fs.mkdirSync(fake, { recursive: true });
  fs.writeFileSync(
    path.join(fake, "systemctl"),
    [
      "#!/bin/bash",
      'echo "systemctl $* (bus timeout ${SYSTEMD_BUS_TIMEOUT:-default})" >>/var/lib/systemctl.log',
      'unit="${*: -1}"',
      'case "$1" in',
      '  is-active) [ -e "/var/lib/active.$unit" ] ;;',
      '  restart) touch "/var/lib/active.$unit" ;;',
      '  disable) rm -f "/var/lib/active.$unit" ;;',
      '  show) if [ -e "/var/lib/stale.$unit" ]; then echo yes; else echo no; fi ;;',
      "esac",
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  const prelude = [
    "set -euo pipefail",
    "for dir in /usr/local /var/lib /etc/kubernetes /etc/systemd/system; do mkdir -p $dir; mount -t tmpfs tmpfs $dir; done",
    `export PATH=${fake}:$PATH`,
  ].join("\n");
  const result = spawnSync(
    "unshare",
    ["--mount", "--propagation", "private", "bash", "-c", `${prelude}\n${script}`],
    {
      encoding: "utf8",
      timeout: 60_000,
    },
  );
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describeIfAvailable(skip, "node-step.sh on a node (mount namespace)", () => {
  const staged = path.join(work, "staged");
  const bundle = fileBundle([
    { path: "/etc/kubernetes/kubelet.conf", mode: "0600", content: "kubeconfig\n" },
    { path: "/etc/systemd/system/kubelet.service", mode: "0644", content: "[Unit]\n" },
  ]).stdin;
  const bundleFile = path.join(work, "bundle");
  beforeAll(() => {
    fs.mkdirSync(staged, { recursive: true });
    fs.writeFileSync(path.join(staged, "kubelet"), "#!/bin/sh\necho kubelet\n");
    fs.writeFileSync(path.join(staged, "portmap"), "#!/bin/sh\necho portmap\n");
    fs.writeFileSync(bundleFile, bundle);
  });
  const step = (verb: string, name: string, extra: string) =>
    `bash ${NODE_ASSETS}/node-step.sh ${verb} --step ${name} ${extra}`;
  const kubelet = `--binary binary ${staged}/kubelet - /usr/local/bin/kubelet --binary binary ${staged}/portmap - /opt/cni/bin/portmap --unit kubelet.service`;

  it("applies, then changes and restarts nothing when applied again, and restarts a changed daemon", () => {
    const result = inNamespace(
      [
        `${step("apply", "kubelet", kubelet)} <${bundleFile}`,
        "echo ---",
        `${step("apply", "kubelet", kubelet)} <${bundleFile}`,
        "echo ---",
        "cat /var/lib/systemctl.log",
        "cat /usr/local/bin/kubelet /etc/kubernetes/kubelet.conf",
        "echo ---",
        // A new file (a renewed certificate): the running daemon restarts.
        `sed 's/a3ViZWNvbmZpZwo=/bmV3Cg==/' ${bundleFile} | ${step("apply", "kubelet", kubelet)}`,
      ].join("\n"),
    );
    expect(result.status).toBe(0);
    const [first, second, log] = result.output.split("---\n");
    expect(first).toContain("hardway-step: started kubelet.service");
    // Running and unchanged: no restart, so a re-applied step leaves its daemon alone.
    expect(second).not.toContain("hardway-step:");
    expect(log.match(/systemctl restart kubelet.service/g)).toHaveLength(1);
    // PID 1 of a loaded emulated VM may take longer than systemctl's default 25 s to answer.
    expect(log).toMatch(/^systemctl daemon-reload \(bus timeout 300\)$/m);
    expect(log).not.toContain("bus timeout default");
    // systemd reloads (every generator again, seconds under emulation) only for the new unit
    // file: once for both applies; enabling it adds links and no reload of its own.
    expect(log.match(/systemctl daemon-reload/g)).toHaveLength(1);
    expect(log.match(/systemctl enable --quiet --no-reload kubelet.service/g)).toHaveLength(2);
    expect(log).not.toMatch(/systemctl enable (?!.*--no-reload)/);
    expect(log).toContain("echo kubelet");
    expect(log).toContain("kubeconfig");
    expect(result.output.split("---\n")[3]).toContain("hardway-step: restarted kubelet.service");
  });

  it("reloads systemd for a changed unit file, or one systemd has not loaded since it changed", () => {
    const reloads = "grep -c daemon-reload /var/lib/systemctl.log || true";
    const result = inNamespace(
      [
        `${step("apply", "kubelet", kubelet)} <${bundleFile}`,
        reloads,
        "echo ---",
        // The unit file changes: one reload more, and the daemon restarts.
        `sed 's/W1VuaXRdCg==/W1VuaXRdCkFmdGVyPWEK/' ${bundleFile} | ${step("apply", "kubelet", kubelet)}`,
        reloads,
        "echo ---",
        // Unchanged, but written by a run that stopped before it reloaded.
        "touch /var/lib/stale.kubelet.service",
        `sed 's/W1VuaXRdCg==/W1VuaXRdCkFmdGVyPWEK/' ${bundleFile} | ${step("apply", "kubelet", kubelet)}`,
        reloads,
      ].join("\n"),
    );
    expect(result.status).toBe(0);
    const [first, changed, stale] = result.output.split("---\n");
    expect(first).toContain("hardway-step: started kubelet.service\n1\n");
    expect(changed).toContain("hardway-step: restarted kubelet.service\n2\n");
    expect(stale).toBe("3\n");
  });

  it("writes a --no-restart file without restarting, and still restarts for any other change", () => {
    const etcdBundle = (cert: string, unit: string) =>
      fileBundle([
        { path: "/etc/kubernetes/pki/etcd/server.crt", mode: "0644", content: cert },
        { path: "/etc/systemd/system/etcd.service", mode: "0644", content: unit },
      ]).stdin;
    const files = ["first", "renewed", "unit"].map((name, i) => {
      const file = path.join(work, `etcd-${name}`);
      fs.writeFileSync(
        file,
        etcdBundle(i === 0 ? "cert 1\n" : "cert 2\n", i < 2 ? "[Unit]\n" : "[Unit]\n#\n"),
      );
      return file;
    });
    const etcd = "--unit etcd.service --no-restart /etc/kubernetes/pki/etcd/server.crt";
    const result = inNamespace(
      [
        `${step("apply", "etcd", etcd)} <${files[0]}`,
        "echo ---",
        // A renewed certificate etcd reads again at its next handshake: written, no restart.
        `${step("apply", "etcd", etcd)} <${files[1]}`,
        "cat /etc/kubernetes/pki/etcd/server.crt",
        "echo ---",
        // A changed unit: the daemon restarts.
        `${step("apply", "etcd", etcd)} <${files[2]}`,
      ].join("\n"),
    );
    expect(result.status).toBe(0);
    const [first, renewed, unit] = result.output.split("---\n");
    expect(first).toContain("hardway-step: started etcd.service");
    expect(renewed).not.toContain("hardway-step:");
    expect(renewed).toContain("cert 2");
    expect(unit).toContain("hardway-step: restarted etcd.service");
  });

  it("reloads for a --reload file alone, restarts when anything else changed too", () => {
    const ldBundle = (config: string, unit: string) =>
      fileBundle([
        { path: "/etc/kubernetes/ldirectord.cf", mode: "0644", content: config },
        { path: "/etc/systemd/system/ldirectord.service", mode: "0644", content: unit },
      ]).stdin;
    const files = [
      ["one server\n", "[Unit]\n"],
      ["three servers\n", "[Unit]\n"],
      ["one server\n", "[Unit]\n#\n"],
    ].map(([config, unit], i) => {
      const file = path.join(work, `ldirectord-${i}`);
      fs.writeFileSync(file, ldBundle(config, unit));
      return file;
    });
    const ld = "--unit ldirectord.service --reload /etc/kubernetes/ldirectord.cf";
    const result = inNamespace(
      [
        `${step("apply", "ldirectord", ld)} <${files[0]}`,
        "echo ---",
        // Another list of servers: ldirectord reads it again and keeps running.
        `${step("apply", "ldirectord", ld)} <${files[1]}`,
        "echo ---",
        `${step("apply", "ldirectord", ld)} <${files[1]}`,
        "echo ---",
        // The config and the unit change: a restart reads both.
        `${step("apply", "ldirectord", ld)} <${files[2]}`,
        "echo ---",
        "grep -c 'systemctl reload' /var/lib/systemctl.log",
      ].join("\n"),
    );
    expect(result.status).toBe(0);
    const [first, reloaded, again, restarted, reloads] = result.output.split("---\n");
    expect(first).toContain("hardway-step: started ldirectord.service");
    expect(reloaded).toContain("hardway-step: reloaded ldirectord.service");
    expect(reloaded).not.toContain("restarted");
    expect(again).not.toContain("hardway-step:");
    expect(restarted).toContain("hardway-step: restarted ldirectord.service");
    expect(restarted).not.toContain("reloaded");
    expect(reloads).toBe("1\n");
  });

  it("restarts a daemon whose file another step rewrote first (the service-account key)", () => {
    const saKey = (key: string, unit: string) =>
      fileBundle([
        { path: "/etc/kubernetes/pki/sa.key", mode: "0600", content: key },
        { path: `/etc/systemd/system/${unit}.service`, mode: "0644", content: "[Unit]\n" },
      ]).stdin;
    const bundles = Object.fromEntries(
      ["kube-apiserver", "kube-controller-manager"].flatMap((unit) =>
        ["old", "new"].map((key) => {
          const file = path.join(work, `sa-${unit}-${key}`);
          fs.writeFileSync(file, saKey(`${key} key\n`, unit));
          return [`${unit}-${key}`, file];
        }),
      ),
    );
    const apply = (unit: string, key: string) =>
      `${step("apply", unit, `--unit ${unit}.service`)} <${bundles[`${unit}-${key}`]}`;
    const result = inNamespace(
      [
        apply("kube-apiserver", "old"),
        apply("kube-controller-manager", "old"),
        "echo ---",
        // A new key: the API server's step writes it first...
        apply("kube-apiserver", "new"),
        "echo ---",
        // ...so the controller manager's step finds the file already right, writes nothing,
        // and must still restart its daemon, which holds the old key.
        apply("kube-controller-manager", "new"),
        "echo ---",
        apply("kube-controller-manager", "new"),
      ].join("\n"),
    );
    expect(result.status).toBe(0);
    const [, api, controller, again] = result.output.split("---\n");
    expect(api).toContain("hardway-step: restarted kube-apiserver.service");
    expect(controller).not.toContain("changed /etc/kubernetes/pki/sa.key");
    expect(controller).toContain("hardway-step: restarted kube-controller-manager.service");
    expect(again).not.toContain("hardway-step:");
  });

  it("removes the step without --root: unmounts below its state dir, keeps the data behind, keeps a shared binary", () => {
    const nfs = path.join(work, "nfs-volume");
    fs.mkdirSync(nfs, { recursive: true });
    fs.writeFileSync(path.join(nfs, "data"), "precious\n");
    const result = inNamespace(
      [
        `${step("apply", "kubelet", kubelet)} <${bundleFile}`,
        // The runtime step installed the same CNI plugin.
        `${step("apply", "containerd", `--binary binary ${staged}/portmap - /opt/cni/bin/portmap`)} </dev/null`,
        "mkdir -p /var/lib/kubelet/pods/p1/volumes/nfs/v1",
        `mount --bind ${nfs} /var/lib/kubelet/pods/p1/volumes/nfs/v1`,
        step("remove", "kubelet", "--unit kubelet.service --state-dir /var/lib/kubelet"),
        "echo removed=$?",
        "test -e /var/lib/kubelet && echo kubelet-dir-left || echo kubelet-dir-gone",
        "test -e /usr/local/bin/kubelet && echo binary-left || echo binary-gone",
        "test -e /opt/cni/bin/portmap && echo shared-kept || echo shared-gone",
        "test -e /etc/kubernetes/kubelet.conf && echo file-left || echo file-gone",
        "grep -c kubelet /proc/self/mounts || true",
        step("remove", "kubelet", "--unit kubelet.service --state-dir /var/lib/kubelet"),
        "echo again=$?",
      ].join("\n"),
    );
    expect(result.output).toContain("removed=0");
    expect(result.output).toContain("kubelet-dir-gone");
    expect(result.output).toContain("binary-gone");
    expect(result.output).toContain("shared-kept");
    expect(result.output).toContain("file-gone");
    expect(result.output).toContain("again=0");
    expect(result.status).toBe(0);
    // What the volume held is still there: rm never crossed into the mount.
    expect(fs.readFileSync(path.join(nfs, "data"), "utf8")).toBe("precious\n");
  });
});
