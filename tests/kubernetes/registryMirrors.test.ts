/**
 * Registry mirrors (config `registryMirrors`): the files each runtime reads, parsed by an
 * independent TOML reader, and then the real thing: the pinned containerd, started with the
 * rendered config and hosts files, pulls an image through its CRI plugin (crictl, as the kubelet
 * would) and the requests arrive at the mirror, a recording HTTP server on loopback, in the
 * order the hosts file gives, each naming the registry it stands in for (`?ns=`).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runtimeFiles } from "../../components/cluster/nodeRuntime";
import { defaultVersions } from "../../components/config/defaults";
import { parseConfig } from "../../components/config/schema";
import {
  CONTAINERD_CERTS_DIR,
  RegistryMirror,
  containerdMirrorFiles,
  crioMirrorFiles,
  registryMirrors,
  renderContainerdConfig,
  renderRegistriesConf,
} from "../../components/kubernetes/runtime";
import { containerdFromMirror, crictlFromMirror } from "../e2e/mirror";
import { removeNetworkNamespace } from "../harness/namespaces";
import { itIfAvailable } from "../harness/prerequisites";
import { parseToml } from "./fixtures";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBlab\n-----END CERTIFICATE-----\n";
const MIRRORS: RegistryMirror[] = [
  {
    registry: "docker.io",
    endpoints: ["https://mirror.lab:5000", "http://10.0.0.5:5000/v2-proxy"],
  },
  { registry: "registry.k8s.io", endpoints: ["https://mirror.lab:5000"], caPem: CA },
];

describe("containerd hosts files", () => {
  const files = containerdMirrorFiles(MIRRORS);

  it("writes one hosts.toml per registry, and a mirror's CA beside it", () => {
    expect(files.map((f) => f.path)).toEqual([
      `${CONTAINERD_CERTS_DIR}/docker.io/hosts.toml`,
      `${CONTAINERD_CERTS_DIR}/registry.k8s.io/hosts.toml`,
      `${CONTAINERD_CERTS_DIR}/registry.k8s.io/ca.crt`,
    ]);
    expect(files[2].content).toBe(CA);
  });

  it("lists the mirrors in order, for pulls and tag resolution, each https one with the CA", () => {
    expect(parseToml(files[0].content)).toEqual({
      host: {
        "https://mirror.lab:5000": { capabilities: ["pull", "resolve"] },
        "http://10.0.0.5:5000/v2-proxy": { capabilities: ["pull", "resolve"] },
      },
    });
    expect(Object.keys(parseToml(files[0].content).host as object)).toEqual(MIRRORS[0].endpoints);
    expect(parseToml(files[1].content)).toEqual({
      host: {
        "https://mirror.lab:5000": {
          capabilities: ["pull", "resolve"],
          ca: `${CONTAINERD_CERTS_DIR}/registry.k8s.io/ca.crt`,
        },
      },
    });
  });

  it("goes to containerd's node step with its config, and nothing without mirrors", () => {
    const paths = (mirrors?: RegistryMirror[]) =>
      runtimeFiles("containerd", mirrors).map((f) => f.path);
    expect(paths(MIRRORS)).toEqual(expect.arrayContaining(files.map((f) => f.path)));
    expect(paths().filter((p) => p.startsWith(CONTAINERD_CERTS_DIR))).toEqual([]);
  });
});

describe("CRI-O registries.conf", () => {
  it("keeps the short-name search and adds one registry entry per mirrored registry", () => {
    expect(parseToml(renderRegistriesConf(MIRRORS))).toEqual({
      "unqualified-search-registries": ["docker.io", "quay.io"],
      "short-name-mode": "permissive",
      registry: [
        {
          prefix: "docker.io",
          location: "docker.io",
          mirror: [
            { location: "mirror.lab:5000" },
            { location: "10.0.0.5:5000/v2-proxy", insecure: true },
          ],
        },
        {
          prefix: "registry.k8s.io",
          location: "registry.k8s.io",
          mirror: [{ location: "mirror.lab:5000" }],
        },
      ],
    });
  });

  it("is the bundle's file when there are no mirrors", () => {
    expect(Object.keys(parseToml(renderRegistriesConf([])))).toEqual([
      "unqualified-search-registries",
      "short-name-mode",
    ]);
  });

  it("puts a mirror's CA where containers/image looks for the mirror host's CAs", () => {
    expect(crioMirrorFiles(MIRRORS)).toEqual([
      { path: "/etc/containers/certs.d/mirror.lab:5000/registry.k8s.io-ca.crt", content: CA },
    ]);
    const paths = runtimeFiles("cri-o", MIRRORS).map((f) => f.path);
    expect(paths).toContain("/etc/containers/certs.d/mirror.lab:5000/registry.k8s.io-ca.crt");
  });
});

describe("from the stack configuration", () => {
  it("reads each CA from its file on the host", () => {
    const config = parseConfig(
      {
        registryMirrors: {
          "quay.io": { endpoints: ["https://m.lab"], ca: "/srv/ca.pem" },
          "docker.io": { endpoints: ["http://10.0.0.5:5000"] },
        },
      },
      { os: "linux", cpu: "x64" },
    );
    const read = jest.fn((file: string) => `pem of ${file}`);
    expect(registryMirrors(config.registryMirrors, read)).toEqual([
      { registry: "quay.io", endpoints: ["https://m.lab"], caPem: "pem of /srv/ca.pem" },
      { registry: "docker.io", endpoints: ["http://10.0.0.5:5000"] },
    ]);
    expect(read).toHaveBeenCalledTimes(1);
  });
});

// ---- the pinned containerd ---------------------------------------------------------------------

const work = fs.mkdtempSync(path.join(os.tmpdir(), "hw-mirrors-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const containerd = containerdFromMirror(defaultVersions.containerd, work);
const crictl = crictlFromMirror(defaultVersions.crictl, path.join(work, "crictl"));
const missing =
  process.getuid?.() !== 0
    ? "needs root to run containerd"
    : "missing" in containerd
      ? containerd.missing
      : "missing" in crictl
        ? crictl.missing
        : undefined;

/**
 * The recording registry, run inside the namespace: it answers /v2/ and nothing else, and prints
 * each path it was asked for.
 */
const REGISTRY_SCRIPT = `
const http = require("node:http");
const server = http.createServer((req, res) => {
  console.log(req.url);
  res.writeHead(req.url === "/v2/" ? 200 : 404, { "Content-Type": "application/json" });
  res.end(req.url === "/v2/" ? "{}" : '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
});
server.listen(Number(process.argv[1]), "127.0.0.1", () => console.log("listening"));
`;

interface Recording {
  readonly url: string;
  readonly asked: () => string[];
}

/** A recording registry on a loopback port of the network namespace `ns`. */
function recordingRegistry(ns: string, port: number): Recording {
  const lines: string[] = [];
  const child = spawn(
    "ip",
    ["netns", "exec", ns, process.execPath, "-e", REGISTRY_SCRIPT, String(port)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  child.stdout?.on("data", (d: Buffer) => lines.push(...d.toString().split("\n").filter(Boolean)));
  return { url: `http://127.0.0.1:${port}`, asked: () => [...lines] };
}

async function until(what: string, check: () => boolean, seconds: number): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`${what} did not happen within ${seconds} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

itIfAvailable(
  missing,
  "containerd's CRI plugin pulls through the mirrors its hosts files name, in order",
  async () => {
    // Only loopback in here: when both mirrors fail, containerd falls back to the registries
    // themselves, and that must go nowhere.
    const ns = `hwmirrors-${process.pid}`;
    spawnSync("ip", ["netns", "add", ns]);
    spawnSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    try {
      const first = recordingRegistry(ns, 5001);
      const second = recordingRegistry(ns, 5002);
      await until("the registries", () => [first, second].every((r) => r.asked().length > 0), 30);
      // The rendered files, moved under this test's directory: only config_path changes.
      const certs = path.join(work, "certs.d");
      const mirrors: RegistryMirror[] = [
        { registry: "docker.io", endpoints: [first.url, second.url] },
        { registry: "registry.k8s.io", endpoints: [second.url] },
      ];
      for (const file of containerdMirrorFiles(mirrors)) {
        const target = path.join(certs, path.relative(CONTAINERD_CERTS_DIR, file.path));
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, file.content);
      }
      const configFile = path.join(work, "config.toml");
      const rendered = renderContainerdConfig();
      expect(rendered).toContain(`config_path = "${CONTAINERD_CERTS_DIR}"`);
      fs.writeFileSync(configFile, rendered.replace(CONTAINERD_CERTS_DIR, certs));
      const socket = path.join(work, "containerd.sock");
      const log: string[] = [];
      const daemon = spawn(
        "ip",
        [
          "netns",
          "exec",
          ns,
          path.join((containerd as { dir: string }).dir, "containerd"),
          "--config",
          configFile,
          "--root",
          path.join(work, "root"),
          "--state",
          path.join(work, "state"),
          "--address",
          socket,
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      daemon.stderr?.on("data", (d: Buffer) => log.push(d.toString()));
      await until("containerd's socket", () => fs.existsSync(socket), 60);

      const pull = (image: string) =>
        spawnSync(
          (crictl as { file: string }).file,
          ["--runtime-endpoint", `unix://${socket}`, "--timeout", "60s", "pull", image],
          { encoding: "utf8" },
        );
      const busybox = pull("docker.io/library/busybox:1.36");
      const pause = pull("registry.k8s.io/pause:3.10.2");
      const manifests = (r: Recording) => r.asked().filter((u) => u.includes("/manifests/"));
      // The registries' lines reach this process once its event loop runs again.
      await until("the second mirror's log", () => manifests(second).length >= 2, 10).catch(
        () => undefined,
      );
      const context = { busybox: busybox.stderr, pause: pause.stderr, containerd: log.join("") };
      // Neither mirror has the images, so both pulls fail, but only after asking each mirror.
      expect({ ...context, first: manifests(first) }).toEqual({
        ...context,
        first: ["/v2/library/busybox/manifests/1.36?ns=docker.io"],
      });
      expect({ ...context, second: manifests(second) }).toEqual({
        ...context,
        second: [
          "/v2/library/busybox/manifests/1.36?ns=docker.io",
          "/v2/pause/manifests/3.10.2?ns=registry.k8s.io",
        ],
      });
    } finally {
      removeNetworkNamespace(ns);
    }
  },
  180_000,
);
