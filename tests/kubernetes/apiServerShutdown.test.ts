/**
 * How a real kube-apiserver stops with the program's own shutdown flags, as `systemctl stop`
 * (SIGTERM) stops it during a rolling update, while a client holds a watch open (every kubelet,
 * controller manager and scheduler does): it must fail /readyz at once, keep serving for the
 * shutdown delay so the load balancer drains it, and then exit by itself, well before systemd's
 * TimeoutStopSec would kill it. Without `--shutdown-send-retry-after` the HTTP server waits for
 * every connection to go idle, up to the request timeout (300 s on emulated nodes), and the
 * open watch never does.
 */
import {
  API_SHUTDOWN_DELAY_SECONDS,
  EMULATED_API_REQUEST_TIMEOUT_SECONDS,
  apiServerCommand,
  apiServerUnit,
} from "../../components/kubernetes/controlPlane";
import { describeIfAvailable } from "../harness/prerequisites";
import { ApiServerLab, apiServerLabMissing } from "./apiServerLab";
import { plan as planFor } from "./fixtures";

/** The flags of the program's API server that decide how it stops. */
function shutdownFlags(command: readonly string[]): string[] {
  return command.filter((arg) => /^--(shutdown-|request-timeout=)/.test(arg));
}

/** How many watches of namespaces the server's /metrics counts as open. */
function openWatches(metrics: string): number {
  const line = metrics
    .split("\n")
    .find(
      (l) =>
        l.startsWith("apiserver_longrunning_requests{") &&
        l.includes('resource="namespaces"') &&
        l.includes('verb="WATCH"'),
    );
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describeIfAvailable(apiServerLabMissing(), "an API server that is stopped", () => {
  const p = planFor({ controlPlanes: 3 });
  const command = apiServerCommand({
    plan: p,
    node: p.controls[0],
    requestTimeoutSeconds: EMULATED_API_REQUEST_TIMEOUT_SECONDS,
  });
  const lab = new ApiServerLab();
  beforeAll(
    () => lab.start({ serviceCidr: p.serviceCidr, apiServerArgs: shutdownFlags(command) }),
    240_000,
  );
  afterAll(() => lab.stop());

  it("drains for the shutdown delay with a watch open, then exits by itself long before systemd would kill it", async () => {
    expect(shutdownFlags(command)).toEqual([
      `--shutdown-delay-duration=${API_SHUTDOWN_DELAY_SECONDS}s`,
      "--shutdown-send-retry-after=true",
      `--request-timeout=${EMULATED_API_REQUEST_TIMEOUT_SECONDS}s`,
    ]);
    const watch = lab.kubectlInBackground(["get", "namespaces", "--watch", "--request-timeout=0"]);
    // The watch is open once the server counts it.
    let watching = false;
    for (let i = 0; i < 60 && !watching; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      watching = openWatches(lab.kubectl(["get", "--raw", "/metrics"]).stdout) > 0;
    }
    expect(watching).toBe(true);
    const stopTimeout = Number(
      apiServerUnit({ plan: p, node: p.controls[0] }).service.timeoutStopSec,
    );
    const stopped = await lab.terminate(stopTimeout);
    watch.kill("SIGKILL");
    expect(stopped.exited).toBe(true);
    // The delay is served in full: the load balancer has that long to see /readyz fail.
    expect(stopped.seconds).toBeGreaterThanOrEqual(API_SHUTDOWN_DELAY_SECONDS);
    // Then the requests in flight drain and the connections get 2 s to close.
    expect(stopped.seconds).toBeLessThan(API_SHUTDOWN_DELAY_SECONDS + 15);
    expect(stopped.code).toBe(0);
  }, 180_000);
});
