/**
 * EnsuredScript: a host-side script whose effect Pulumi keeps in place, even when something
 * outside Pulumi undoes it (a reboot drops bridges, NAT rules and daemons). Each step runs the
 * script with a verb:
 *
 *   create  `<script> create <args>` (stdin piped in): on create, and on update. Its last
 *           line of output is kept as the resource's `output` (a VM's instance id, a path).
 *   diff    `<script> status <args>`, with create's stdin: exit 0 means nothing to do; exit 1
 *           means gone, so `pulumi up` plans an update that runs `create` again. Any other
 *           exit is an error.
 *           A script that only probes (`watch: false`) is not asked.
 *   delete  `<script> delete <args>`: on destroy and before a replacement.
 *
 * A create that fails half way is still recorded, so the next `up` finishes it and `destroy`
 * removes what it did make.
 *
 * The script's text is kept in the resource's state and run from a private temp copy, so
 * `status` and `delete` run exactly what `create` ran, whatever happened to the checkout since.
 * Scripts must therefore be self-contained (take paths as arguments, source nothing). `create`
 * and `delete` must be idempotent; `status` must only look.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { SUDO_HINT, privilegedArgv, sudoWouldPrompt } from "./privilege";

/** Where scripts live; EnsuredScriptArgs.script is relative to it. */
export const ASSETS_DIR = path.resolve(__dirname, "../../assets");

export interface EnsuredScriptArgs {
  /** Path of the script under assets/, e.g. "host/linux-network.sh". */
  readonly script: string;
  /** Words after the verb, the same for create, status and delete. Never put secrets here. */
  readonly args: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Piped to `create` only: file content, secrets. Stored as a secret in the state.
   * @default nothing (stdin is empty)
   */
  readonly stdin?: pulumi.Input<string>;
  /**
   * Run through `sudo -n` unless Pulumi already runs as root. When sudo would prompt, the step
   * fails at once and asks the user to run `sudo -v` first.
   * @default false
   */
  readonly asRoot?: boolean;
  /**
   * Any change to these values runs `create` again (an update), e.g. a version or content hash.
   * @default []
   */
  readonly triggers?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * A step that runs longer than this is killed and fails.
   * @default 300
   */
  readonly timeoutSeconds?: number;
  /**
   * Whether each preview asks the script's `status` if its effect is still in place. Turn it off
   * for a one-shot probe, whose effect lives elsewhere.
   * @default true
   */
  readonly watch?: boolean;
}

/** What the provider keeps in the state; also its inputs. */
export interface EnsuredScriptState {
  readonly script: string;
  readonly scriptText: string;
  readonly scriptSha256: string;
  readonly args: readonly string[];
  readonly stdin: string;
  readonly asRoot: boolean;
  readonly triggers: readonly string[];
  readonly timeoutSeconds: number;
  readonly watch: boolean;
}

/** The state after a run: the inputs and the last line `create` printed. */
export interface EnsuredScriptOutputs extends EnsuredScriptState {
  readonly output: string;
}

export type Verb = "create" | "status" | "delete";

/** Inputs whose change means a different thing on the host: the old one must go first. */
const REPLACE_KEYS = ["script", "args", "asRoot"] as const;
/** Inputs whose change is applied by running `create` again over the existing thing. */
const UPDATE_KEYS = ["scriptSha256", "stdin", "triggers"] as const;

/** Which inputs changed, and how; pure, so the reboot logic is testable without a host. */
export function inputChanges(
  olds: EnsuredScriptState,
  news: EnsuredScriptState,
): { readonly replaces: string[]; readonly updates: string[] } {
  const differs = (key: keyof EnsuredScriptState) =>
    JSON.stringify(olds[key]) !== JSON.stringify(news[key]);
  return {
    replaces: REPLACE_KEYS.filter(differs),
    updates: UPDATE_KEYS.filter(differs),
  };
}

export interface StepResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Loads a Node built-in from inside provider code. The provider's functions are serialised into
 * the Pulumi state and run in another process, where this file's imports do not exist.
 */
function builtin<T>(name: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
  return require(name) as T;
}

/**
 * Runs one verb of the stored script, as root when the state asks for it. Asynchronous: one
 * provider process serves every EnsuredScript, and a blocking call would serialise them all.
 */
export async function runStep(
  state: EnsuredScriptState,
  verb: Verb,
  uid: number,
): Promise<StepResult> {
  const childProcess = builtin<typeof import("node:child_process")>("node:child_process");
  const nodeFs = builtin<typeof import("node:fs")>("node:fs");
  const nodeOs = builtin<typeof import("node:os")>("node:os");
  const nodePath = builtin<typeof import("node:path")>("node:path");
  const spawn = (argv: readonly string[], input: string) =>
    new Promise<StepResult>((resolve, reject) => {
      const child = childProcess.spawn(argv[0], argv.slice(1), {
        stdio: ["pipe", "pipe", "pipe"],
        timeout: state.timeoutSeconds * 1000,
        killSignal: "SIGKILL",
      });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      child.on("error", (err) => reject(new Error(`${state.script} ${verb}: ${err.message}`)));
      child.on("close", (code) => resolve({ code, stdout, stderr }));
      // A script that never reads stdin closes it early; that is not an error.
      child.stdin.on("error", () => undefined);
      child.stdin.end(input);
    });
  if (state.asRoot && uid !== 0) {
    const probe = await spawn(["sudo", "-n", "true"], "");
    if (probe.code !== 0) {
      throw new Error(`${state.script} ${verb}: ${SUDO_HINT}\n${probe.stderr}`);
    }
  }
  const dir = nodeFs.mkdtempSync(nodePath.join(nodeOs.tmpdir(), "hardway-script-"));
  try {
    const file = nodePath.join(dir, nodePath.basename(state.script));
    nodeFs.writeFileSync(file, state.scriptText, { mode: 0o700 });
    const argv = privilegedArgv(["bash", file, verb, ...state.args], { asRoot: state.asRoot, uid });
    // status gets create's stdin too, to look at what create was given (a CA to verify with).
    const result = await spawn(argv, verb === "delete" ? "" : state.stdin);
    if (sudoWouldPrompt(result.stderr)) {
      throw new Error(`${state.script} ${verb}: ${SUDO_HINT}\n${result.stderr}`);
    }
    return result;
  } finally {
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
}

function describeFailure(state: EnsuredScriptState, verb: Verb, result: StepResult): string {
  const exit = result.code === null ? "was killed (timeout?)" : `exited ${result.code}`;
  return `${state.script} ${verb} ${state.args.join(" ")} ${exit}:\n${result.stderr}${result.stdout}`;
}

/** Runs a verb that must succeed; returns the last line it printed. */
async function mustRun(state: EnsuredScriptState, verb: Verb): Promise<string> {
  const result = await runStep(state, verb, process.getuid?.() ?? 0);
  if (result.code !== 0) {
    throw new Error(describeFailure(state, verb, result));
  }
  const lines = result.stdout.trim().split("\n");
  return lines[lines.length - 1] ?? "";
}

export const ensuredScriptProvider: pulumi.dynamic.ResourceProvider<
  EnsuredScriptState,
  EnsuredScriptOutputs
> = {
  async create(inputs) {
    const crypto = builtin<typeof import("node:crypto")>("node:crypto");
    const id = crypto
      .createHash("sha256")
      .update(JSON.stringify([inputs.script, inputs.args]))
      .digest("hex")
      .slice(0, 16);
    try {
      return { id, outs: { ...inputs, output: await mustRun(inputs, "create") } };
    } catch (err) {
      // Recorded as created but not initialised: `up` runs create again, `destroy` runs delete.
      throw Object.assign(new Error((err as Error).message), {
        id,
        properties: { ...inputs, output: "" },
        reasons: [(err as Error).message],
      });
    }
  },

  async diff(_id, olds, news) {
    const { replaces, updates } = inputChanges(olds, news);
    if (replaces.length > 0 || updates.length > 0) {
      // Whether the old goes first is the resource's deleteBeforeReplace option.
      return { changes: true, replaces };
    }
    if (olds.watch === false) {
      return { changes: false };
    }
    const status = await runStep(olds, "status", process.getuid?.() ?? 0);
    if (status.code === 0) {
      return { changes: false };
    }
    if (status.code === 1) {
      // Gone from the host (a reboot, a manual cleanup): running create again restores it.
      return { changes: true, replaces: [] };
    }
    throw new Error(describeFailure(olds, "status", status));
  },

  async update(_id, _olds, news) {
    return { outs: { ...news, output: await mustRun(news, "create") } };
  },

  async delete(_id, olds) {
    await mustRun(olds, "delete");
  },
};

/** The inputs the provider stores, from the caller's args; reads the script now, once. */
export function ensuredScriptInputs(
  args: EnsuredScriptArgs,
): pulumi.Inputs & { [K in keyof EnsuredScriptState]: pulumi.Input<unknown> } {
  if (path.isAbsolute(args.script) || args.script.split(/[\\/]/).includes("..")) {
    throw new Error(`EnsuredScript script must be a path under assets/, got "${args.script}"`);
  }
  const file = path.join(ASSETS_DIR, args.script);
  if (!fs.existsSync(file)) {
    throw new Error(`EnsuredScript script ${args.script} does not exist (looked at ${file})`);
  }
  const scriptText = fs.readFileSync(file, "utf8");
  return {
    script: args.script,
    scriptText,
    scriptSha256: crypto.createHash("sha256").update(scriptText).digest("hex"),
    args: args.args,
    stdin: args.stdin ?? "",
    asRoot: args.asRoot ?? false,
    triggers: args.triggers ?? [],
    timeoutSeconds: args.timeoutSeconds ?? 300,
    watch: args.watch ?? true,
  };
}

export class EnsuredScript extends pulumi.dynamic.Resource {
  declare readonly script: pulumi.Output<string>;
  declare readonly args: pulumi.Output<string[]>;
  /** The last line `create` printed. */
  declare readonly output: pulumi.Output<string>;

  constructor(name: string, args: EnsuredScriptArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      ensuredScriptProvider,
      name,
      { ...ensuredScriptInputs(args), output: undefined },
      {
        // A changed bridge or VM must be torn down before its successor takes its name.
        deleteBeforeReplace: true,
        ...opts,
        additionalSecretOutputs: ["stdin"],
      },
      "host",
      "EnsuredScript",
    );
  }
}
