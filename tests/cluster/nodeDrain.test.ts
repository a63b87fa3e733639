/**
 * NodeDrain's decisions and messages: which kubectl lines each verb runs on the control node, when
 * an update acts, and what a failed drain tells the user, from kubectl's own output (the lines
 * k8s.io/kubectl v0.37.2 pkg/drain prints).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  NodeDrainState,
  disruptionChanged,
  drainCommands,
  drainFailure,
  evictionRefusals,
  leaveCommands,
  nodeDrainProvider,
  runUntilDone,
  transientApiFailure,
} from "../../components/cluster/nodeDrain";

const state: NodeDrainState = {
  verb: "drain",
  node: "worker1",
  disruption: { kubernetes: "1.36", runtime: "containerd" },
  via: { host: "192.168.234.11", user: "ubuntu", privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" },
  kubeconfig: "/etc/kubernetes/admin.conf",
  timeoutSeconds: 600,
};

describe("NodeDrain", () => {
  it("drains a registered node, keeping DaemonSet pods and moving emptyDir ones, never forcing", () => {
    const [command] = drainCommands(state);
    expect(command).toContain(
      "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf drain worker1 --ignore-daemonsets --delete-emptydir-data --timeout=600s",
    );
    expect(command).not.toContain("--force");
    expect(command).toMatch(/^if sudo kubectl .* get node worker1 >\/dev\/null 2>&1; then /);
    expect(command).toContain("nothing to drain");
  });

  it("uncordons only once the node is Ready again", () => {
    expect(drainCommands({ ...state, verb: "uncordon" })).toEqual([
      "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf wait --for=condition=Ready node/worker1 --timeout=600s",
      "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf uncordon worker1",
    ]);
  });

  it("acts only when the disruption changed: a new minor or runtime, not a new host key", () => {
    expect(
      disruptionChanged(state, {
        ...state,
        disruption: { ...state.disruption, kubernetes: "1.37" },
      }),
    ).toBe(true);
    expect(
      disruptionChanged(state, { ...state, disruption: { ...state.disruption, runtime: "cri-o" } }),
    ).toBe(true);
    expect(
      disruptionChanged(state, { ...state, via: { ...state.via, hostKey: "ssh-ed25519 BBBB" } }),
    ).toBe(false);
  });

  it("does nothing on create, and updates in place", async () => {
    expect(await nodeDrainProvider.create(state)).toEqual({ id: "drain@worker1", outs: state });
    const diff = await nodeDrainProvider.diff!("drain@worker1", state, {
      ...state,
      disruption: { kubernetes: "1.37", runtime: "containerd" },
    });
    expect(diff).toMatchObject({ changes: true, replaces: [] });
  });

  it("names the pods a PodDisruptionBudget kept, after the timeout", () => {
    const output = [
      "evicting pod default/web-7d4b9c-abcde",
      'error when evicting pods/"web-7d4b9c-abcde" -n "default" (will retry after 5s): Cannot evict pod as it would violate the pod\'s disruption budget.',
      'error when evicting pods/"web-7d4b9c-abcde" -n "default" (will retry after 5s): Cannot evict pod as it would violate the pod\'s disruption budget.',
      'There are pending pods in node "worker1" when an error occurred: error when evicting pods/"web-7d4b9c-abcde" -n "default": global timeout reached: 10m0s',
      'error: unable to drain node "worker1" due to error: error when evicting pods/"web-7d4b9c-abcde" -n "default": global timeout reached: 10m0s, continuing command...',
    ].join("\n");
    expect(drainFailure("worker1", output)).toBe(
      "cannot drain worker1: the eviction of default/web-7d4b9c-abcde (Cannot evict pod as it would violate the pod's disruption budget.) did not go through; where a PodDisruptionBudget allows no disruption now, make room for its pods elsewhere or relax it, then run pulumi up again",
    );
  });

  it("quotes the API's own reason for a pod no budget covers", () => {
    // The API server's priority and fairness answers 429 too when it sheds load.
    const output = [
      'error when evicting pods/"client-5f6d" -n "default" (will retry after 5s): Too many requests, please try your request again later.',
      'error when evicting pods/"coredns-7b9c-x2" -n "kube-system" (will retry after 5s): Cannot evict pod as it would violate the pod\'s disruption budget.',
      'error: unable to drain node "control0" due to error: [error when evicting pods/"client-5f6d" -n "default": global timeout reached: 10m0s, error when evicting pods/"coredns-7b9c-x2" -n "kube-system": global timeout reached: 10m0s], continuing command...',
    ].join("\n");
    const reasons = evictionRefusals(output);
    expect(Object.fromEntries(reasons)).toEqual({
      "default/client-5f6d": "Too many requests, please try your request again later.",
      "kube-system/coredns-7b9c-x2":
        "Cannot evict pod as it would violate the pod's disruption budget.",
    });
    // A pod named only in kubectl's final list of errors.
    expect([...evictionRefusals(output.split("\n")[2]).keys()]).toEqual([
      "default/client-5f6d",
      "kube-system/coredns-7b9c-x2",
    ]);
    expect(
      drainFailure(
        "control0",
        'error when evicting pods/"a" -n "b": etcdserver: request timed out\n',
      ),
    ).toBe(
      "cannot drain control0: the eviction of b/a (etcdserver: request timed out) did not go through; the API said why, then run pulumi up again",
    );
  });

  describe("when the API does not finish a request", () => {
    // What kubectl v0.37.2 printed in the e2e's scale-in on a loaded single control plane: the
    // API server gives a write 34 s, and kubectl drain stops at the first such answer.
    const timedOut =
      'error when evicting pods/"spread-5f7fbc68b9-bkjjw" -n "default": Timeout: request did not complete within requested timeout - context deadline exceeded';

    it("tells a request the API did not finish from a refusal", () => {
      expect(
        transientApiFailure(`evicting pod default/spread-5f7fbc68b9-bkjjw\n${timedOut}\n`),
      ).toBe(timedOut);
      for (const line of [
        "Unable to connect to the server: net/http: TLS handshake timeout",
        "Error from server (ServiceUnavailable): the server is currently unable to handle the request",
        'error when evicting pods/"a" -n "b": etcdserver: request timed out',
        "The connection to the server 192.168.234.20:6443 was refused - did you specify the right host or port?\ndial tcp 192.168.234.20:6443: connect: connection refused",
      ]) {
        expect(transientApiFailure(line)).toBeDefined();
      }
      for (const line of [
        'error when evicting pods/"web" -n "default": global timeout reached: 10m0s',
        "Cannot evict pod as it would violate the pod's disruption budget.",
        "cannot delete Pods that declare no controller (use --force to override): default/echo",
        'Error from server (NotFound): nodes "worker9" not found',
        "error: timed out waiting for the condition on nodes/worker1",
      ]) {
        expect(transientApiFailure(line)).toBeUndefined();
      }
    });

    /** runUntilDone over scripted results, on a clock that only the waits move. */
    async function scripted(results: { code: number; output: string }[], timeoutSeconds = 600) {
      let clock = 0;
      const said: string[] = [];
      let runs = 0;
      const outcome = runUntilDone(
        () => {
          clock += 30_000; // each kubectl run takes 30 s
          return Promise.resolve(results[Math.min(runs++, results.length - 1)]);
        },
        {
          timeoutSeconds,
          delaySeconds: 10,
          failure: (output) => `cannot drain worker1: ${output}`,
          say: (line) => said.push(line),
          sleep: (seconds) => {
            clock += seconds * 1000;
            return Promise.resolve();
          },
          now: () => clock,
        },
      ).then(
        () => "done",
        (err: Error) => err.message,
      );
      return { outcome: await outcome, said, runs };
    }

    it("asks again after a transient failure, and is done when the command succeeds", async () => {
      const result = await scripted([
        { code: 1, output: timedOut },
        { code: 1, output: "Unable to connect to the server: net/http: TLS handshake timeout" },
        { code: 0, output: "node/worker1 drained" },
      ]);
      expect(result).toEqual({
        outcome: "done",
        said: [
          `the API did not finish (${timedOut}); asking again in 10 s`,
          "the API did not finish (Unable to connect to the server: net/http: TLS handshake timeout); asking again in 10 s",
        ],
        runs: 3,
      });
    });

    it("fails at once on a refusal, and after its timeout on a failure that stays", async () => {
      const refused = await scripted([{ code: 1, output: "error: no such node" }]);
      expect(refused).toEqual({
        outcome: "cannot drain worker1: error: no such node",
        said: [],
        runs: 1,
      });
      // 30 s a run and 10 s a wait: the fifth run ends at 190 s, and a sixth would start past 200.
      const stays = await scripted([{ code: 1, output: timedOut }], 200);
      expect(stays.runs).toBe(5);
      expect(stays.outcome).toBe(`cannot drain worker1: ${timedOut} (tried 5 times in 190 s)`);
    });
  });

  it("names the pods no controller would re-create, which it does not delete", () => {
    const output =
      'error: unable to drain node "worker1" due to error: cannot delete Pods that declare no controller (use --force to override): default/echo, default/debug, continuing command...\nThere are pending nodes to be drained:\n worker1\n';
    expect(drainFailure("worker1", output)).toBe(
      "cannot drain worker1: default/echo, default/debug belong to no controller, so nothing would re-create them elsewhere; delete them or run them from a Deployment, then run pulumi up again",
    );
  });

  it("passes any other failure on as kubectl said it", () => {
    expect(
      drainFailure("worker1", 'error: the server doesn\'t have a resource type "nodes"\n'),
    ).toBe('cannot drain worker1: error: the server doesn\'t have a resource type "nodes"');
  });

  describe("when the node leaves the cluster (its NodeDrains are deleted)", () => {
    /**
     * Runs a command line with stand-ins for sudo and kubectl: kubectl records its arguments,
     * knows worker1 when `registered`, and reports its Ready condition as `ready`.
     */
    function runLeave(command: string, node: { registered: boolean; ready: string }) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-leave-"));
      const write = (name: string, body: string) =>
        fs.writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
      write("sudo", 'exec "$@"');
      write(
        "kubectl",
        [
          `echo "$*" >> ${dir}/calls`,
          'if [[ "$*" == *" get node "* ]]; then',
          `  ${node.registered ? "" : "exit 1; "}[[ "$*" == *jsonpath* ]] && printf %s "${node.ready}"`,
          "  exit 0",
          "fi",
        ].join("\n"),
      );
      const run = spawnSync("bash", ["-c", command], {
        encoding: "utf8",
        env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` },
      });
      const calls = fs.existsSync(path.join(dir, "calls"))
        ? fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n")
        : [];
      fs.rmSync(dir, { recursive: true, force: true });
      return {
        status: run.status,
        stdout: run.stdout,
        actions: calls.filter((c) => !/ get /.test(c)),
      };
    }
    const [leaving] = leaveCommands({ ...state, verb: "uncordon" });
    const admin = "--kubeconfig /etc/kubernetes/admin.conf";

    it("drains a Ready node before its steps go, as an upgrade does (PodDisruptionBudgets waited for)", () => {
      const run = runLeave(leaving, { registered: true, ready: "True" });
      expect(run.status).toBe(0);
      expect(run.actions).toEqual([
        `${admin} drain worker1 --ignore-daemonsets --delete-emptydir-data --timeout=600s`,
      ]);
    });

    it("only cordons a node that is not Ready: its kubelet cannot stop the pods a drain would wait for", () => {
      for (const ready of ["False", "Unknown", ""]) {
        const run = runLeave(leaving, { registered: true, ready });
        expect(run.status).toBe(0);
        expect(run.actions).toEqual([`${admin} cordon worker1`]);
        expect(run.stdout).toContain("worker1 is not Ready: cordoned only");
      }
    });

    it("does nothing for a node that never registered", () => {
      const run = runLeave(leaving, { registered: false, ready: "" });
      expect(run.status).toBe(0);
      expect(run.actions).toEqual([]);
      expect(run.stdout).toContain("node worker1 is not registered: nothing to drain");
    });

    it("deletes the Node object once the kubelet is gone, whether or not it is still there", () => {
      const [remove] = leaveCommands(state);
      expect(remove).toBe(
        `sudo kubectl ${admin} delete node worker1 --ignore-not-found --timeout=600s`,
      );
      expect(runLeave(remove, { registered: false, ready: "" }).actions).toEqual([
        `${admin} delete node worker1 --ignore-not-found --timeout=600s`,
      ]);
    });

    it("passes shellcheck", () => {
      for (const command of [...leaveCommands(state), leaving, ...drainCommands(state)]) {
        const check = spawnSync("shellcheck", ["-s", "bash", "-"], {
          input: `#!/usr/bin/env bash\n${command}\n`,
          encoding: "utf8",
        });
        expect(check.stdout + check.stderr).toBe("");
      }
    });

    it("skips everything when the control node does not answer (it went first)", async () => {
      const unreachable = {
        ...state,
        // No sshd on loopback takes this key: ssh exits 255, as for a VM that is gone.
        via: { ...state.via, host: "127.0.0.1" },
      };
      await expect(
        nodeDrainProvider.delete!("uncordon@worker1", unreachable),
      ).resolves.toBeUndefined();
    });
  });
});
