/**
 * The rendered ldirectord.cf run by the real ldirectord (Debian's), against three HTTPS "API
 * servers" (openssl s_server answering /readyz from a file) on the control nodes' addresses,
 * inside a network namespace of the test's own. This kernel has no IPVS, so the table is kept by
 * a stand-in ipvsadm that ldirectord's debug mode runs from its working directory: it records
 * each change with its time, and lists the table as `ipvsadm -L -n` does.
 *
 * Measured here: how long a server stays in the table after its /readyz starts failing (what an
 * API server does for --shutdown-delay-duration before it stops serving), and after it hangs.
 * ldirectord checks the real servers of a virtual service one after another (`fork` forks one
 * checker per virtual service, not per server), so a hung server's check timeouts delay every
 * other server's checks as well.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { API_SHUTDOWN_DELAY_SECONDS } from "../../components/kubernetes/controlPlane";
import {
  DEFAULT_CHECKS,
  EMULATED_CHECKS,
  LdirectordChecks,
  ldirectordConfig,
  readyzRequest,
} from "../../components/kubernetes/loadBalancer";
import { removeNetworkNamespace } from "../harness/namespaces";
import { describeIfAvailable, missingPrograms } from "../harness/prerequisites";
import { selfSigned } from "../harness/selfSigned";
import { plan as planFor } from "./fixtures";

const p = planFor({ controlPlanes: 3 });
const {
  checkTimeout: CHECK_TIMEOUT,
  checkInterval: CHECK_INTERVAL,
  failureCount: FAILURE_COUNT,
} = DEFAULT_CHECKS;

const skipReason =
  process.getuid?.() !== 0
    ? "needs root for a network namespace"
    : missingPrograms(["ldirectord", "openssl", "ip"]);

const STAND_IN_IPVSADM = `#!/bin/bash
# ipvsadm for a kernel without IPVS: the table lives in a file, each change is logged.
dir="$(cd "$(dirname "$0")" && pwd)"
table="$dir/table"
touch "$table"
args="$*"
real() { sed -n 's/.*-r \\([0-9.:]*\\).*/\\1/p' <<<"$args"; }
case " $args " in
  *" -A "*) echo "V $(sed -n 's/.*-t \\([0-9.:]*\\).*/\\1/p' <<<"$args")" >>"$table" ;;
  # Each change is logged before the table shows it: the test reads the log once it sees the table.
  *" -a "*) echo "$(date +%s%3N) add $(real)" >>"$dir/changes"; echo "R $(real)" >>"$table" ;;
  *" -d "*)
    r="$(real)"
    echo "$(date +%s%3N) delete $r" >>"$dir/changes"
    grep -v "^R $r\\$" "$table" >"$table.new" || true
    mv "$table.new" "$table" ;;
  *" -L "*)
    echo "IP Virtual Server version 1.2.1 (size=4096)"
    echo "Prot LocalAddress:Port Scheduler Flags"
    echo "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
    while read -r kind addr; do
      if [[ $kind == V ]]; then
        echo "TCP  $addr wrr"
      elif [[ " $args " == *" --thresholds "* ]]; then
        echo "  -> $addr          0          0          0          0"
      else
        echo "  -> $addr          Route   1      0          0"
      fi
    done <"$table" ;;
esac
`;

const ns = `hwld-${crypto.randomBytes(3).toString("hex")}`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "hw-ldirectord-"));
const servers = new Map<string, ChildProcess>();
let director: ChildProcess | undefined;

const address = (i: number) => `${p.controls[i].ip}:${p.apiPort}`;
const inTable = () =>
  fs.existsSync(path.join(work, "table"))
    ? fs
        .readFileSync(path.join(work, "table"), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("R "))
        .map((l) => l.slice(2))
        .sort()
    : [];
/** When the stand-in last deleted a server, in ms since the epoch, if it did after `since`. */
const deletedAt = (server: string, since: number) =>
  fs
    .readFileSync(path.join(work, "changes"), "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter(([at, what, who]) => what === "delete" && who === server && Number(at) >= since)
    .map(([at]) => Number(at))
    .pop();
/** The stand-in's changes ("add SERVER", "delete SERVER") from `since` on, in order. */
const changedSince = (since: number) =>
  fs
    .readFileSync(path.join(work, "changes"), "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter(([at]) => Number(at) >= since)
    .map(([, what, who]) => `${what} ${who}`);
/**
 * What server i answers on /readyz, whichever checks the probe leaves out: openssl s_server
 * -WWW serves the file named by the whole request path, query string included.
 */
const setReadyz = (i: number, body: string) => {
  for (const request of new Set([readyzRequest({}), readyzRequest(EMULATED_CHECKS)])) {
    fs.writeFileSync(path.join(work, `server${i}`, request.slice(1)), body);
  }
};

async function until(what: string, test: () => boolean, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (!test()) {
    if (Date.now() - start > timeoutMs) {
      throw new Error(`${what}: not after ${timeoutMs} ms (table: ${inTable().join(", ")})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - start;
}

function startServer(i: number): void {
  const dir = path.join(work, `server${i}`);
  const server = spawn(
    "ip",
    ["netns", "exec", ns, "openssl", "s_server", "-quiet", "-accept", address(i)].concat([
      "-cert",
      "../tls.crt",
      "-key",
      "../tls.key",
      "-WWW",
    ]),
    { cwd: dir, stdio: "ignore" },
  );
  servers.set(address(i), server);
}

/** (Re)starts ldirectord with these checks, on an empty table. */
function startDirector(checks: LdirectordChecks, forPlan = p): void {
  director?.kill("SIGKILL");
  fs.rmSync(path.join(work, "table"), { force: true });
  fs.rmSync(path.join(work, "changes"), { force: true });
  const config = path.join(work, "ldirectord.cf");
  fs.writeFileSync(
    config,
    ldirectordConfig({ plan: forPlan, ...checks, logFile: path.join(work, "ldirectord.log") }),
  );
  // -d: stay in the foreground and use ./ipvsadm; the check trusts the servers' certificate as
  // the gateway trusts the cluster CA (update-ca-certificates), here through OpenSSL's
  // SSL_CERT_FILE.
  director = spawn("ip", ["netns", "exec", ns, "ldirectord", "-d", config, "start"], {
    cwd: work,
    stdio: "ignore",
    env: { ...process.env, SSL_CERT_FILE: path.join(work, "tls.crt") },
  });
}

describeIfAvailable(
  skipReason,
  "ldirectord with the rendered config, three API servers in a namespace",
  () => {
    beforeAll(() => {
      const made = spawnSync("ip", ["netns", "add", ns], { encoding: "utf8" });
      if (made.status !== 0) {
        throw new Error(`ip netns add ${ns}: ${made.stderr}`);
      }
      spawnSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
      for (const c of p.controls) {
        spawnSync("ip", ["-n", ns, "addr", "add", `${c.ip}/32`, "dev", "lo"]);
      }
      selfSigned(work, "tls", "/CN=kube-apiserver", [
        `subjectAltName=${p.controls.map((c) => `IP:${c.ip}`).join(",")}`,
      ]);
      p.controls.forEach((_, i) => {
        fs.mkdirSync(path.join(work, `server${i}`));
        setReadyz(i, "ok");
        startServer(i);
      });
      fs.writeFileSync(path.join(work, "ipvsadm"), STAND_IN_IPVSADM, { mode: 0o755 });
      // The defaults, as a cluster on hardware-accelerated guests renders them.
      startDirector({});
    }, 30_000);

    afterAll(() => {
      director?.kill("SIGKILL");
      servers.forEach((s) => s.kill("SIGKILL"));
      removeNetworkNamespace(ns);
      fs.rmSync(work, { recursive: true, force: true });
    });

    it("accepts the config and puts every answering API server in the table", async () => {
      await until("all three servers in the table", () => inTable().length === 3, 30_000);
      expect(inTable()).toEqual([0, 1, 2].map(address).sort());
    }, 40_000);

    it("drops a server failing /readyz (shutting down) within the API server's shutdown delay", async () => {
      setReadyz(0, "[-]shutdown failed: process is shutting down\nreadyz check failed");
      const removedMs = await until(
        "the failing server dropped",
        () => !inTable().includes(address(0)),
        60_000,
      );
      console.log(`ldirectord dropped a server failing /readyz after ${removedMs} ms`);
      expect(removedMs).toBeLessThan(API_SHUTDOWN_DELAY_SECONDS * 1000);
      expect(inTable()).toEqual([1, 2].map(address).sort());
      setReadyz(0, "ok");
      await until("the server taken back", () => inTable().includes(address(0)), 30_000);
    }, 100_000);

    it("drops a hung server once its checks time out, the others' checks waiting behind it", async () => {
      const hung = servers.get(address(1));
      const start = Date.now();
      hung?.kill("SIGSTOP");
      setReadyz(2, "[-]shutdown failed: process is shutting down\nreadyz check failed");
      try {
        const bound = FAILURE_COUNT * (CHECK_TIMEOUT + CHECK_INTERVAL) * 1000 + 15_000;
        await until("both dropped", () => inTable().length === 1, bound);
        expect(inTable()).toEqual([address(0)]);
        const hungMs = (deletedAt(address(1), start) ?? NaN) - start;
        const failingMs = (deletedAt(address(2), start) ?? NaN) - start;
        console.log(
          `with one server hung: it was dropped after ${hungMs} ms, a server failing /readyz ` +
            `meanwhile after ${failingMs} ms (checks run one after another)`,
        );
        // A hung server goes once its checks have timed out FAILURE_COUNT times in a row, and
        // with the defaults that is before an API server's shutdown delay ends.
        expect(hungMs).toBeGreaterThanOrEqual(FAILURE_COUNT * CHECK_TIMEOUT * 1000);
        expect(hungMs).toBeLessThan(API_SHUTDOWN_DELAY_SECONDS * 1000);
        expect(failingMs).toBeLessThan(API_SHUTDOWN_DELAY_SECONDS * 1000);
        // Alone, a failing server goes in FAILURE_COUNT intervals (the test above); behind a hung
        // one each of its checks waits for the hung one's timeout. Were ldirectord to check in
        // parallel, this would fail, and the removal times in README.md would be out of date.
        expect(failingMs).toBeGreaterThanOrEqual((FAILURE_COUNT - 1) * CHECK_TIMEOUT * 1000);
      } finally {
        hung?.kill("SIGCONT");
        setReadyz(2, "ok");
      }
    }, 120_000);

    it("with the emulated guests' slower checks, still drops a failing server within the delay", async () => {
      startDirector(EMULATED_CHECKS);
      await until("all three servers in the table", () => inTable().length === 3, 60_000);
      setReadyz(0, "[-]shutdown failed: process is shutting down\nreadyz check failed");
      const removedMs = await until(
        "the failing server dropped",
        () => !inTable().includes(address(0)),
        60_000,
      );
      console.log(
        `with the emulated checks, dropped a server failing /readyz after ${removedMs} ms`,
      );
      expect(removedMs).toBeLessThan(API_SHUTDOWN_DELAY_SECONDS * 1000);
    }, 130_000);

    it("keeps a single control plane's server whatever its /readyz says: nothing to fail over to", async () => {
      const single = planFor({ controlPlanes: 1 });
      expect(single.controls[0].ip).toBe(p.controls[0].ip);
      setReadyz(0, "ok");
      startDirector({ checkInterval: CHECK_INTERVAL }, single);
      await until("the server in the table", () => inTable().length === 1, 30_000);
      setReadyz(0, "[-]etcd-readiness failed\nreadyz check failed");
      // Longer than a failing server takes to leave when checked (the tests above).
      await new Promise((r) => setTimeout(r, 2 * FAILURE_COUNT * CHECK_INTERVAL * 1000));
      expect(inTable()).toEqual([address(0)]);
    }, 60_000);

    it("on a reload for another number of control planes, keeps the server that stays and adds a new one once it answers", async () => {
      // From the single control plane of the test above to three (the step reloads, --reload).
      const config = path.join(work, "ldirectord.cf");
      const checks = {
        checkTimeout: CHECK_TIMEOUT,
        checkInterval: CHECK_INTERVAL,
        failureCount: FAILURE_COUNT,
        logFile: path.join(work, "ldirectord.log"),
      };
      setReadyz(0, "ok");
      setReadyz(1, "ok");
      setReadyz(2, "[-]etcd-readiness failed\nreadyz check failed");
      const since = Date.now();
      fs.writeFileSync(config, ldirectordConfig({ plan: p, ...checks }));
      director?.kill("SIGHUP");
      const addedMs = await until("control1 added", () => inTable().includes(address(1)), 60_000);
      console.log(`reloaded with three servers: the answering new one added after ${addedMs} ms`);
      await new Promise((r) => setTimeout(r, 2 * FAILURE_COUNT * CHECK_INTERVAL * 1000));
      expect(inTable()).toEqual([0, 1].map(address).sort());
      // Not even for a moment: ldirectord puts a server it does not know in the table at start
      // and takes it out again before its first check, unless readdquiescent=yes.
      expect(changedSince(since).filter((c) => c.endsWith(address(2)))).toEqual([]);
      setReadyz(2, "ok");
      await until("control2 added once it answers", () => inTable().length === 3, 60_000);
      // And back to one: the two that left are taken out, the one that stays never was.
      fs.writeFileSync(
        config,
        ldirectordConfig({ plan: planFor({ controlPlanes: 1 }), ...checks }),
      );
      director?.kill("SIGHUP");
      await until("back to control0 alone", () => inTable().length === 1, 60_000);
      expect(inTable()).toEqual([address(0)]);
      expect(deletedAt(address(0), since)).toBeUndefined();
    }, 200_000);
  },
);
