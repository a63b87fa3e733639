import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KubectlClusterApi } from "./kubectlClusterApi";

/**
 * A stand-in `kubectl` and `ssh` that record their argv and stdin and answer like the
 * real tools, so the argv the real ClusterApi builds is checked without a cluster.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-fake-kubectl-"));
const logFile = path.join(dir, "calls.log");

const kubectl = `#!/bin/sh
printf '%s\\n' "kubectl $*" >>"${logFile}"
case "$*" in
  *" apply -f -"*|*" delete -f -"*) cat >>"${logFile}"; echo >>"${logFile}"; echo ok ;;
  *" get nodes -o json") echo '{"items":[{"metadata":{"name":"worker0"},"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ok"}]}}]}' ;;
  *" get pod missing "*) echo 'Error from server (NotFound): pods "missing" not found' >&2; exit 1 ;;
  *" get pod broken "*) echo 'Unable to connect to the server' >&2; exit 1 ;;
  *" exec "*) echo "exec output"; exit 3 ;;
esac
`;
const ssh = `#!/bin/sh
printf '%s\\n' "ssh $*" >>"${logFile}"
echo remote
`;

beforeAll(() => {
  fs.writeFileSync(path.join(dir, "kubectl"), kubectl, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, "ssh"), ssh, { mode: 0o755 });
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => fs.writeFileSync(logFile, ""));

const api = new KubectlClusterApi({
  credentials: { kubeconfigFile: "/tmp/kc", sshKeyFile: "/tmp/key" },
  sshUser: "ubuntu",
  commandTimeoutMs: 30_000,
  kubectl: path.join(dir, "kubectl"),
  ssh: path.join(dir, "ssh"),
});
const calls = () => fs.readFileSync(logFile, "utf8");

describe("KubectlClusterApi", () => {
  it("reads nodes with the stack's kubeconfig", async () => {
    expect(await api.getNodes()).toEqual([
      { name: "worker0", ready: true, readyDetail: "KubeletReady: ok" },
    ]);
    expect(calls()).toBe("kubectl --kubeconfig /tmp/kc get nodes -o json\n");
  });

  it("applies and deletes objects as one List on stdin, deletes bounded and idempotent", async () => {
    const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "n" } };
    await api.apply([pod]);
    await api.delete([pod]);
    const lines = calls().split("\n");
    expect(lines[0]).toBe("kubectl --kubeconfig /tmp/kc apply -f -");
    expect(JSON.parse(lines[1])).toEqual({ apiVersion: "v1", kind: "List", items: [pod] });
    expect(lines[2]).toBe(
      "kubectl --kubeconfig /tmp/kc delete -f - --ignore-not-found --wait=true --timeout=25s",
    );
  });

  it("answers undefined for a missing object and fails for any other error", async () => {
    expect(await api.getPod("n", "missing")).toBeUndefined();
    await expect(api.getPod("n", "broken")).rejects.toThrow(
      "kubectl get pod broken failed: Unable to connect to the server",
    );
  });

  it("passes exec results through, exit code included", async () => {
    expect(await api.exec("n", "p", ["nslookup", "kubernetes.default"])).toEqual({
      code: 3,
      stdout: "exec output\n",
      stderr: "",
    });
    expect(calls()).toBe(
      "kubectl --kubeconfig /tmp/kc exec -n n p -- nslookup kubernetes.default\n",
    );
  });

  it("runs ssh non-interactively with only the stack's key", async () => {
    expect((await api.sshExec("192.168.234.11", "echo hi")).stdout).toBe("remote\n");
    expect(calls()).toBe(
      "ssh -i /tmp/key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null " +
        "-o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR " +
        "ubuntu@192.168.234.11 echo hi\n",
    );
  });
});
