import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type * as PulumiModule from "@pulumi/pulumi";
import {
  ASSETS_DIR,
  EnsuredScriptState,
  ensuredScriptInputs,
  ensuredScriptProvider,
  inputChanges,
} from "../../components/host/ensured";

/**
 * A stand-in for a host script: `create` writes stdin to a marker file, `status` checks it
 * holds what status is given on stdin (create's stdin, as the API probe needs its CA),
 * `delete` removes it. `status` exits 2 when a "broken" file exists, like a real script hitting
 * something it cannot judge.
 */
const FIXTURE = [
  "#!/usr/bin/env bash",
  "set -euo pipefail",
  'verb="$1" marker="$2"',
  'case "$verb" in',
  '    create) cat >"$marker"; echo create >>"$marker.log"; echo "made $marker" ;;',
  '    status) [[ ! -e "$marker.broken" ]] || { echo "cannot tell" >&2; exit 2; }; [[ -s "$marker" ]] && cmp -s - "$marker" ;;',
  '    delete) rm -f "$marker"; echo delete >>"$marker.log" ;;',
  "esac",
  "",
].join("\n");

function state(marker: string, overrides: Partial<EnsuredScriptState> = {}): EnsuredScriptState {
  return {
    script: "test/fixture.sh",
    scriptText: FIXTURE,
    scriptSha256: "f1",
    args: [marker],
    stdin: "content\n",
    asRoot: false,
    triggers: [],
    timeoutSeconds: 30,
    watch: true,
    ...overrides,
  };
}

describe("inputChanges", () => {
  const base = state("/m");
  it.each([
    { what: "nothing", change: {}, replaces: [], updates: [] },
    { what: "args", change: { args: ["/other"] }, replaces: ["args"], updates: [] },
    {
      what: "the script path",
      change: { script: "test/other.sh" },
      replaces: ["script"],
      updates: [],
    },
    { what: "asRoot", change: { asRoot: true }, replaces: ["asRoot"], updates: [] },
    {
      what: "the script text",
      change: { scriptSha256: "f2" },
      replaces: [],
      updates: ["scriptSha256"],
    },
    { what: "stdin", change: { stdin: "new\n" }, replaces: [], updates: ["stdin"] },
    { what: "triggers", change: { triggers: ["v2"] }, replaces: [], updates: ["triggers"] },
    { what: "only the timeout", change: { timeoutSeconds: 5 }, replaces: [], updates: [] },
  ])(
    "when $what changes: replaces $replaces, updates $updates",
    ({ change, replaces, updates }) => {
      expect(inputChanges(base, { ...base, ...change })).toEqual({ replaces, updates });
    },
  );
});

describe("ensuredScriptInputs", () => {
  it("reads the script under assets/ and hashes it", () => {
    const inputs = ensuredScriptInputs({
      script: "host/linux-network.sh",
      args: ["--bridge", "x"],
    });
    expect(inputs.scriptText).toBe(
      fs.readFileSync(path.join(ASSETS_DIR, "host/linux-network.sh"), "utf8"),
    );
    expect(inputs.scriptSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(inputs).toMatchObject({
      stdin: "",
      asRoot: false,
      triggers: [],
      timeoutSeconds: 300,
      watch: true,
    });
  });

  it.each(["../package.json", "/etc/passwd", "host/../../package.json"])(
    "refuses %p, which is not under assets/",
    (script) => {
      expect(() => ensuredScriptInputs({ script, args: [] })).toThrow(/under assets/);
    },
  );

  it("names the missing file", () => {
    expect(() => ensuredScriptInputs({ script: "host/nope.sh", args: [] })).toThrow(
      /host\/nope\.sh does not exist/,
    );
  });
});

describe("the EnsuredScript provider, serialised as Pulumi stores it", () => {
  let dir: string;
  let provider: typeof ensuredScriptProvider;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-ensured-"));
    let loaded: typeof ensuredScriptProvider | undefined;
    await jest.isolateModulesAsync(async () => {
      const pulumi = (await import("@pulumi/pulumi")) as typeof PulumiModule;
      const serialised = await pulumi.runtime.serializeFunction(() => ensuredScriptProvider, {
        allowSecrets: true,
      });
      const file = path.join(dir, "provider.js");
      fs.writeFileSync(file, serialised.text);
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loads the serialised text
      const module = require(file) as Record<string, () => typeof ensuredScriptProvider>;
      loaded = module[serialised.exportName]();
    });
    provider = loaded as typeof ensuredScriptProvider;
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const log = (marker: string) => fs.readFileSync(`${marker}.log`, "utf8").trim().split("\n");

  it("creates with stdin, reports no change while healthy, re-creates after the effect is lost", async () => {
    const marker = path.join(dir, "network");
    const inputs = state(marker);
    const created = await provider.create(inputs);
    expect(fs.readFileSync(marker, "utf8")).toBe("content\n");
    expect(created.outs?.output).toBe(`made ${marker}`);

    await expect(provider.diff!(created.id, created.outs!, inputs)).resolves.toEqual({
      changes: false,
    });

    fs.rmSync(marker); // what a host reboot does to a bridge
    const afterReboot = await provider.diff!(created.id, created.outs!, inputs);
    expect(afterReboot).toEqual({ changes: true, replaces: [] });
    await provider.update!(created.id, created.outs!, inputs);
    expect(fs.readFileSync(marker, "utf8")).toBe("content\n");
    await expect(provider.diff!(created.id, created.outs!, inputs)).resolves.toEqual({
      changes: false,
    });

    await provider.delete!(created.id, created.outs!);
    expect(fs.existsSync(marker)).toBe(false);
    await provider.delete!(created.id, created.outs!);
    expect(log(marker)).toEqual(["create", "create", "delete", "delete"]);
  });

  it("updates on new content and replaces on new args", async () => {
    const marker = path.join(dir, "content");
    const inputs = state(marker);
    const created = await provider.create(inputs);
    await expect(
      provider.diff!(created.id, created.outs!, { ...inputs, stdin: "v2\n" }),
    ).resolves.toEqual({ changes: true, replaces: [] });
    await expect(
      provider.diff!(created.id, created.outs!, { ...inputs, args: [`${marker}2`] }),
    ).resolves.toEqual({ changes: true, replaces: ["args"] });
    await provider.update!(created.id, created.outs!, { ...inputs, stdin: "v2\n" });
    expect(fs.readFileSync(marker, "utf8")).toBe("v2\n");
  });

  it("fails the preview when status can neither confirm nor deny", async () => {
    const marker = path.join(dir, "broken");
    const created = await provider.create(state(marker));
    fs.writeFileSync(`${marker}.broken`, "");
    await expect(provider.diff!(created.id, created.outs!, state(marker))).rejects.toThrow(
      /test\/fixture\.sh status .* exited 2:\ncannot tell/,
    );
  });

  it("never asks status of a probe (watch: false): its effect lives elsewhere", async () => {
    const marker = path.join(dir, "probe");
    const inputs = state(marker, { watch: false });
    const created = await provider.create(inputs);
    fs.rmSync(marker);
    await expect(provider.diff!(created.id, created.outs!, inputs)).resolves.toEqual({
      changes: false,
    });
  });

  it("keeps a failed create in the state, with the script's own message", async () => {
    const failing = state(path.join(dir, "missing-dir", "marker"));
    const error = await provider.create(failing).then(
      () => undefined,
      (err: Error & { id?: string; properties?: Record<string, unknown> }) => err,
    );
    expect(error?.message).toMatch(/test\/fixture\.sh create .* exited 1:\n.*No such file/);
    // An id and properties make the engine record the resource as created but not initialised:
    // the next `up` runs create again, and `destroy` runs delete for what it did make.
    expect(error?.id).toMatch(/^[0-9a-f]{16}$/);
    expect(error?.properties).toMatchObject({ args: failing.args, script: failing.script });
  });
});
