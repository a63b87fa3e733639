/**
 * assets/cluster/wait-for-object.sh against a real kube-apiserver.
 *
 * `--until admitted`, with a real validating webhook (an HTTPS server in this process, on
 * loopback) in front of config maps, the way MetalLB's webhook sits in front of its pools: while
 * the webhook cannot be called the API answers 500 "failed calling webhook" and the script asks
 * again; once the webhook admits the object it passes, and the dry run stored nothing; a denial
 * fails at once with the webhook's own reason; an object that exists already (409) counts as
 * admitted; after its attempts it gives up naming the last answer.
 *
 * `--until labelled`, with a Node object whose status this test writes as a kubelet would: it
 * waits while the Node is missing and while it is NotReady, then patches the label in once Ready
 * is True; a Node that carries the label already is not patched.
 *
 * `--until rolled-out`, with a DaemonSet whose status this test writes as its controller would:
 * it waits while the controller has not seen the spec, while no node runs it, and while fewer
 * pods than scheduled are Ready (where Helm's own wait already passes), and ends once all are.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import { parse } from "yaml";
import { renderKubeconfig } from "../../components/pki/kubeconfig";
import { describeIfAvailable } from "../harness/prerequisites";
import { selfSigned } from "../harness/selfSigned";
import { ApiServerLab, apiServerLabMissing } from "../kubernetes/apiServerLab";
import { plan as planFor } from "../kubernetes/fixtures";

const SCRIPT = path.resolve(__dirname, "../../assets/cluster/wait-for-object.sh");
const LABEL = { "hardway-test": "admission" };
const COLLECTION = "/api/v1/namespaces/default/configmaps";
const ROLE = "node-role.kubernetes.io/control-plane";

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

describeIfAvailable(apiServerLabMissing(), "wait-for-object.sh", () => {
  const lab = new ApiServerLab();
  let kubeconfig = "";
  let webhookPort = 0;
  let webhook: https.Server | undefined;
  /** What the webhook answers, and how many reviews it was asked. */
  let verdict: { allowed: true } | { allowed: false; message: string } = { allowed: true };
  let reviews = 0;

  const configMap = (name: string) =>
    JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels: LABEL } });

  /** `--until admitted` of this body. */
  const run = (body: string, attempts: number, interval = 0, onStderr?: (text: string) => void) =>
    script(
      ["--until", "admitted", "--path", COLLECTION, "--body", body],
      attempts,
      interval,
      onStderr,
    );

  /** The script, asynchronously: the webhook answering it lives in this process. */
  function script(
    until: string[],
    attempts: number,
    interval: number,
    onStderr?: (text: string) => void,
  ) {
    return new Promise<Run>((resolve) => {
      const child = spawn("bash", [
        SCRIPT,
        "create",
        ...until,
        "--attempts",
        String(attempts),
        "--interval",
        String(interval),
      ]);
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        onStderr?.(stderr);
      });
      child.on("close", (status) => resolve({ status, stdout, stderr }));
      // A script that refuses its arguments exits before it reads the kubeconfig: no EPIPE then.
      child.stdin.on("error", () => undefined);
      child.stdin.end(kubeconfig);
    });
  }

  function startWebhook(): Promise<void> {
    const server = https.createServer(
      {
        cert: fs.readFileSync(path.join(lab.workDir, "webhook.crt")),
        key: fs.readFileSync(path.join(lab.workDir, "webhook.key")),
      },
      (request, response) => {
        let text = "";
        request.on("data", (chunk: Buffer) => (text += chunk.toString()));
        request.on("end", () => {
          reviews += 1;
          const review = JSON.parse(text) as { request: { uid: string } };
          const status = verdict.allowed ? {} : { status: { code: 422, message: verdict.message } };
          response.setHeader("Content-Type", "application/json");
          response.end(
            JSON.stringify({
              apiVersion: "admission.k8s.io/v1",
              kind: "AdmissionReview",
              response: { uid: review.request.uid, allowed: verdict.allowed, ...status },
            }),
          );
        });
      },
    );
    webhook = server;
    return new Promise((resolve) => server.listen(webhookPort, "127.0.0.1", () => resolve()));
  }

  function stopWebhook(): Promise<void> {
    const server = webhook;
    webhook = undefined;
    // The API server keeps its connection to the webhook open: cut it too, or the "stopped"
    // webhook would go on answering through it.
    return new Promise((resolve) => {
      if (server === undefined) {
        resolve();
        return;
      }
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  beforeAll(async () => {
    await lab.start({ serviceCidr: planFor({}).serviceCidr });
    const dir = lab.workDir;
    selfSigned(dir, "webhook", "/CN=webhook", ["subjectAltName=IP:127.0.0.1"]);
    webhookPort = await freePort();
    const configuration = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: "hardway-test" },
      webhooks: [
        {
          name: "configmaps.hardway.test",
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          failurePolicy: "Fail",
          timeoutSeconds: 2,
          // Only this test's objects: the API server writes config maps of its own.
          objectSelector: { matchLabels: LABEL },
          rules: [
            {
              apiGroups: [""],
              apiVersions: ["v1"],
              operations: ["CREATE"],
              resources: ["configmaps"],
            },
          ],
          clientConfig: {
            url: `https://127.0.0.1:${webhookPort}/validate`,
            caBundle: fs.readFileSync(path.join(dir, "webhook.crt")).toString("base64"),
          },
        },
      ],
    };
    const applied = lab.kubectl(["apply", "-f", "-"], JSON.stringify(configuration));
    expect(applied.stderr).toBe("");
    // The script reads a kubeconfig with everything embedded, as the Pki component renders it:
    // the lab's admin certificate, and its server's self-signed serving certificate as the CA.
    const labConfig = parse(fs.readFileSync(lab.kubeconfig, "utf8")) as {
      clusters: { cluster: { server: string } }[];
    };
    kubeconfig = renderKubeconfig({
      cluster: "lab",
      server: labConfig.clusters[0].cluster.server,
      caCertPem: fs.readFileSync(path.join(dir, "serving", "apiserver.crt"), "utf8"),
      user: "admin",
      clientCertPem: fs.readFileSync(path.join(dir, "admin.crt"), "utf8"),
      clientKeyPem: fs.readFileSync(path.join(dir, "admin.key"), "utf8"),
    });
  }, 240_000);

  afterAll(async () => {
    await stopWebhook();
    lab.stop();
  });

  it("asks again while the webhook cannot be called, and passes once it admits", async () => {
    verdict = { allowed: true };
    let started: Promise<void> | undefined;
    const result = await run(configMap("pool"), 30, 1, (stderr) => {
      // The first refusal seen: now the webhook comes up, as MetalLB's does after its certificate.
      if (started === undefined && /attempt 1\/30/.test(stderr)) {
        started = startWebhook();
      }
    });
    expect(result.stderr).toMatch(
      /attempt 1\/30: not admitted yet \(HTTP 500: .*failed calling webhook/,
    );
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(
      /^admitted: \/api\/v1\/namespaces\/default\/configmaps \(HTTP 201 on attempt \d+\)\n$/,
    );
    expect(reviews).toBeGreaterThan(0);
    // A dry run: nothing was stored.
    expect(lab.kubectl(["get", "configmap", "pool", "-n", "default"]).stderr).toMatch(/NotFound/);
  }, 120_000);

  it("fails at once with the webhook's own reason when it denies the object", async () => {
    verdict = { allowed: false, message: "pool addresses overlap another pool" };
    const before = reviews;
    const result = await run(configMap("pool"), 5, 2);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /the API refused \/api\/v1\/namespaces\/default\/configmaps \(HTTP 422\): .*pool addresses overlap another pool/,
    );
    expect(result.stderr).not.toMatch(/attempt 1\//);
    expect(reviews - before).toBe(1);
  }, 60_000);

  it("counts an object that exists already (409) as admitted: the webhook ran first", async () => {
    verdict = { allowed: true };
    // Made without the label, so without the webhook: kubectl runs synchronously and the webhook
    // in this process could not answer it meanwhile.
    const created = lab.kubectl(["create", "configmap", "existing", "-n", "default"]);
    expect(created.stderr).toBe("");
    const before = reviews;
    const result = await run(configMap("existing"), 3);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/\(HTTP 409 on attempt 1\)/);
    expect(reviews - before).toBe(1);
  }, 60_000);

  it("gives up after its attempts, naming the last answer", async () => {
    await stopWebhook();
    const result = await run(configMap("pool"), 2, 0);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /not admitted after 2 attempts, 0 s apart; the last answer: HTTP 500: .*failed calling webhook/,
    );
  }, 60_000);

  it("waits until a Node is registered and Ready, then labels it once; a label already there is left", async () => {
    const node = "control7";
    const path7 = `/api/v1/nodes/${node}`;
    const role = ["--until", "labelled", "--path", path7, "--label", `${ROLE}=`];
    const ready = (status: "True" | "False") =>
      lab.kubectl([
        "patch",
        "node",
        node,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({
          status: { conditions: [{ type: "Ready", status, reason: "KubeletReady", message: "" }] },
        }),
      ]);
    /** The Node's labels and resourceVersion (which any write changes). */
    const metadata = (name: string) =>
      (
        JSON.parse(lab.kubectl(["get", "--raw", `/api/v1/nodes/${name}`]).stdout) as {
          metadata: { labels?: Record<string, string>; resourceVersion: string };
        }
      ).metadata;
    const missing = await script(role, 2, 0);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(
      /attempt 1\/2: not labelled yet \(HTTP 404: nodes "control7" not found\)/,
    );
    expect(
      lab.kubectl(
        ["create", "-f", "-"],
        JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: node } }),
      ).stderr,
    ).toBe("");
    expect(ready("False").stderr).toBe("");
    const notReady = await script(role, 2, 0);
    expect(notReady.status).toBe(1);
    expect(notReady.stderr).toMatch(
      /not labelled after 2 attempts, 0 s apart; the last answer: the node is not Ready yet/,
    );
    // Not labelled while it was not Ready.
    expect(metadata(node).labels?.[ROLE]).toBeUndefined();
    let turned = false;
    const waited = await script(role, 30, 1, (stderr) => {
      // The kubelet reports Ready while the host waits.
      if (!turned && /attempt 1\/30/.test(stderr)) {
        turned = true;
        expect(ready("True").stderr).toBe("");
      }
    });
    expect(waited.status).toBe(0);
    expect(waited.stdout).toMatch(
      /^labelled: \/api\/v1\/nodes\/control7 now has node-role.kubernetes.io\/control-plane= \(patched on attempt \d+\)\n$/,
    );
    const labelled = metadata(node);
    expect(labelled.labels?.[ROLE]).toBe("");
    // Again: the label is there, nothing is written.
    const again = await script(role, 1, 0);
    expect(again.stdout).toMatch(/has node-role.kubernetes.io\/control-plane= \(on attempt 1\)/);
    expect(metadata(node).resourceVersion).toBe(labelled.resourceVersion);
  }, 120_000);

  it("waits until an object is present: the default ServiceAccount the controller manager makes", async () => {
    // No controller manager runs here: the test makes the ServiceAccount as it would.
    const namespace = "hardway-present";
    const present = [
      "--until",
      "present",
      "--path",
      `/api/v1/namespaces/${namespace}/serviceaccounts/default`,
    ];
    const missing = await script(present, 2, 0);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(
      /attempt 1\/2: not present yet \(HTTP 404: serviceaccounts "default" not found\)/,
    );
    let made = false;
    const waited = await script(present, 30, 1, (stderr) => {
      if (!made && /attempt 1\/30/.test(stderr)) {
        made = true;
        expect(lab.kubectl(["create", "namespace", namespace]).stderr).toBe("");
        expect(lab.kubectl(["-n", namespace, "create", "serviceaccount", "default"]).stderr).toBe(
          "",
        );
      }
    });
    expect(waited.status).toBe(0);
    expect(waited.stdout).toMatch(
      /^present: \/api\/v1\/namespaces\/hardway-present\/serviceaccounts\/default \(on attempt \d+\)\n$/,
    );
  }, 120_000);

  it("waits until a DaemonSet runs its latest spec Ready on every node it schedules", async () => {
    // No controller manager runs here: the test writes the status as the DaemonSet controller
    // and the kubelets' readiness would, the way Cilium's agents come up one after another.
    const name = "agent";
    const dsPath = `/apis/apps/v1/namespaces/default/daemonsets/${name}`;
    const rolledOut = ["--until", "rolled-out", "--path", dsPath];
    const status = (fields: Record<string, number>) =>
      lab.kubectl([
        "patch",
        "daemonset",
        name,
        "-n",
        "default",
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({
          status: {
            currentNumberScheduled: 2,
            numberMisscheduled: 0,
            desiredNumberScheduled: 2,
            updatedNumberScheduled: 2,
            ...fields,
          },
        }),
      ]);
    const missing = await script(rolledOut, 1, 0);
    expect(missing.stderr).toMatch(
      /not rolled-out after 1 attempts.*HTTP 404: daemonsets.apps "agent" not found/,
    );
    const labels = { app: name };
    const created = lab.kubectl(
      ["create", "-f", "-"],
      JSON.stringify({
        apiVersion: "apps/v1",
        kind: "DaemonSet",
        metadata: { name, namespace: "default" },
        spec: {
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name, image: "registry.k8s.io/pause:3.10" }] },
          },
        },
      }),
    );
    expect(created.stderr).toBe("");
    const unseen = await script(rolledOut, 1, 0);
    expect(unseen.stderr).toMatch(/the last answer: its controller has not seen generation 1 yet/);
    expect(
      status({
        observedGeneration: 1,
        desiredNumberScheduled: 0,
        currentNumberScheduled: 0,
        updatedNumberScheduled: 0,
        numberReady: 0,
      }).stderr,
    ).toBe("");
    const none = await script(rolledOut, 1, 0);
    expect(none.stderr).toMatch(/the last answer: no node runs it yet/);
    // What Helm's wait takes for ready (two missing are within the chart's maxUnavailable): not here.
    expect(status({ observedGeneration: 1, numberReady: 0 }).stderr).toBe("");
    const zero = await script(rolledOut, 1, 0);
    expect(zero.stderr).toMatch(/the last answer: 0 of 2 pods Ready, 2 of 2 on the latest spec/);
    expect(status({ observedGeneration: 1, numberReady: 1 }).stderr).toBe("");
    let turned = false;
    const waited = await script(rolledOut, 30, 1, (stderr) => {
      // The second agent turns Ready while the host waits.
      if (!turned && /attempt 1\/30: not rolled-out yet \(1 of 2 pods Ready/.test(stderr)) {
        turned = true;
        expect(status({ observedGeneration: 1, numberReady: 2 }).stderr).toBe("");
      }
    });
    expect(turned).toBe(true);
    expect(waited.status).toBe(0);
    expect(waited.stdout).toMatch(
      /^rolled out: \/apis\/apps\/v1\/namespaces\/default\/daemonsets\/agent, 2 pods Ready \(on attempt \d+\)\n$/,
    );
  }, 120_000);

  it("refuses a Node path for --until labelled that is not one, a bad label, and an unknown --until", async () => {
    const wrong = await script(
      ["--until", "labelled", "--path", COLLECTION, "--label", `${ROLE}=`],
      1,
      0,
    );
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/--until labelled takes a Node's path, \/api\/v1\/nodes\/NAME/);
    const quoted = await script(
      ["--until", "labelled", "--path", "/api/v1/nodes/control7", "--label", 'a"b=c'],
      1,
      0,
    );
    expect(quoted.stderr).toMatch(/--until labelled needs --label KEY=VALUE/);
    const unknown = await script(["--until", "gone", "--path", COLLECTION], 1, 0);
    expect(unknown.stderr).toMatch(
      /--until must be admitted, labelled, present or rolled-out \(got 'gone'\)/,
    );
    const notDaemonSet = await script(["--until", "rolled-out", "--path", COLLECTION], 1, 0);
    expect(notDaemonSet.stderr).toMatch(/--until rolled-out takes a DaemonSet's path/);
  });

  it("refuses a kubeconfig without embedded certificates before asking anything", async () => {
    const saved = kubeconfig;
    kubeconfig = fs.readFileSync(lab.kubeconfig, "utf8");
    try {
      const result = await run(configMap("pool"), 1);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(
        /has no certificate-authority-data \(certificates must be embedded\)/,
      );
    } finally {
      kubeconfig = saved;
    }
  });
});
