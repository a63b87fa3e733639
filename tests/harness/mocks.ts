/**
 * The Pulumi mock harness. Each run loads a fresh copy of @pulumi/pulumi and of the program, so
 * one test file can run the program under many configurations. It records every registered
 * resource (type, name, inputs, parent, dependencies), answers the project's dynamic resources
 * (real keys and certificates from the PKI's own providers, see dynamicStandIn.ts) and fails
 * loudly on any invoke it does not know.
 */
import { isDeepStrictEqual } from "node:util";
import type * as PulumiModule from "@pulumi/pulumi";
import { standIns } from "./dynamicStandIn";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly custom: boolean;
  /** Inputs as the provider receives them (Outputs resolved). */
  readonly inputs: Record<string, unknown>;
  /** Paths of inputs that arrived as secrets, e.g. "privateKeyPem" or "environment.TOKEN". */
  readonly secretInputs: readonly string[];
  /** State the mock returned: inputs plus what the stand-in computed. */
  readonly state: Record<string, unknown>;
  readonly parentUrn?: string;
  /** URNs of every resource this one waits for (explicit dependsOn and input dependencies). */
  readonly dependencies: readonly string[];
  readonly provider?: string;
  /** URN of the resource whose deletion takes this one with it (the deletedWith option). */
  readonly deletedWith?: string;
}

export interface ProgramRun {
  readonly pulumi: typeof PulumiModule;
  readonly resources: readonly RecordedResource[];
  /** The program module's exports (stack outputs). */
  readonly exports: Record<string, unknown>;
}

export const STACK = "test";

/** Errors raised while registering resources; a run that has any fails with the first. */
const failures: Error[] = [];

/** The wire form of a secret value, as the mock monitor hands inputs over. */
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";

function revealSecrets(value: unknown, path: string, secrets: string[]): unknown {
  if (Array.isArray(value)) {
    return value.map((v, i) => revealSecrets(v, `${path}[${i}]`, secrets));
  }
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    if (record[SIG_KEY] === SECRET_SIG) {
      secrets.push(path);
      return revealSecrets(record.value, path, []);
    }
    return Object.fromEntries(
      Object.entries(record).map(([k, v]) => [
        k,
        revealSecrets(v, path ? `${path}.${k}` : k, secrets),
      ]),
    );
  }
  return value;
}
export const PROJECT = "hardway";

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getDependenciesList(): string[];
  getProvider(): string;
  getDeletedwith(): string;
}
interface RegisterResponse {
  getUrn(): string;
}
interface Monitor {
  registerResource(req: RegisterRequest, cb: (err: unknown, res?: RegisterResponse) => void): void;
}

/**
 * Installs mocks on the given @pulumi/pulumi instance and returns the live list of recorded
 * resources. `config` holds full keys, e.g. { "hardway:workers": "5" }.
 */
export async function installMocks(
  pulumi: typeof PulumiModule,
  config: Readonly<Record<string, string>> = {},
  preview = false,
  prior: readonly RecordedResource[] = [],
): Promise<RecordedResource[]> {
  const priorByKey = new Map(prior.map((r) => [`${r.type}::${r.name}`, r]));
  const recorded: RecordedResource[] = [];
  const pending = new Map<
    string,
    { inputs: Record<string, unknown>; state: Record<string, unknown>; secretInputs: string[] }
  >();
  pulumi.runtime.setAllConfig({ ...config });
  await pulumi.runtime.setMocks(
    {
      async newResource(args) {
        const standIn = standIns[args.type];
        const secretInputs: string[] = [];
        const inputs = revealSecrets(args.inputs, "", secretInputs) as Record<string, unknown>;
        try {
          // Like the engine on a stack with state: unchanged inputs keep the prior outputs.
          const before = priorByKey.get(`${args.type}::${args.name}`);
          const state =
            before !== undefined && isDeepStrictEqual(before.inputs, inputs)
              ? before.state
              : standIn
                ? await standIn(inputs)
                : { ...inputs };
          pending.set(`${args.type}::${args.name}`, { inputs, state, secretInputs });
          return { id: `${args.name}-id`, state };
        } catch (err) {
          failures.push(new Error(`${args.type} ${args.name}: ${(err as Error).message}`));
          throw err;
        }
      },
      call(args) {
        throw new Error(`unexpected invoke ${args.token} in a mocked program`);
      },
    },
    PROJECT,
    STACK,
    preview,
  );
  const monitor = pulumi.runtime.getMonitor() as unknown as Monitor;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) =>
    register(req, (err, res) => {
      if (!err && res) {
        const key = `${req.getType()}::${req.getName()}`;
        const seen = pending.get(key) ?? { inputs: {}, state: {}, secretInputs: [] };
        recorded.push({
          type: req.getType(),
          name: req.getName(),
          urn: res.getUrn(),
          custom: req.getCustom(),
          inputs: seen.inputs,
          secretInputs: seen.secretInputs,
          state: seen.state,
          parentUrn: req.getParent() || undefined,
          dependencies: req.getDependenciesList(),
          provider: req.getProvider() || undefined,
          deletedWith: req.getDeletedwith() || undefined,
        });
      }
      cb(err, res);
    });
  return recorded;
}

/** Resolves an Output's value (and whether it is secret) under mocks. */
export async function unwrap<T>(
  output: PulumiModule.Output<T> | PulumiModule.Input<T>,
): Promise<{ value: T; secret: boolean }> {
  const out = output as PulumiModule.Output<T>;
  if (typeof out?.apply !== "function") {
    return { value: output as T, secret: false };
  }
  const value = await new Promise<T>((resolve) => out.apply((v) => resolve(v)));
  const secret = await (out as unknown as { isSecret: Promise<boolean> }).isSecret;
  return { value, secret };
}

/** The program threw while it was being loaded; `resources` is what it registered before. */
export class ProgramFailure extends Error {
  constructor(
    readonly cause: Error,
    readonly resources: readonly RecordedResource[],
  ) {
    super(cause.message);
    this.name = "ProgramFailure";
  }
}

/** Rejects as soon as any resource fails to register, so a broken run fails fast. */
async function firstFailure(): Promise<never> {
  for (;;) {
    if (failures.length > 0) {
      throw failures[0];
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until the program has stopped registering resources. */
async function settle(count: () => number): Promise<void> {
  let last = -1;
  let stableRounds = 0;
  while (stableRounds < 5) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = count();
    stableRounds = now === last ? stableRounds + 1 : 0;
    last = now;
  }
}

/**
 * Runs `index.ts` under mocks with the given stack config and returns everything it registered
 * and exported. Throws whatever the program throws (e.g. a config error).
 */
export async function runProgram(
  config: Readonly<Record<string, string>> = {},
  options: {
    preview?: boolean;
    /**
     * The resources of an earlier run, as a stack's state: a resource whose inputs did not
     * change keeps what it returned then (its keys, certificates), as the engine keeps them.
     */
    prior?: readonly RecordedResource[];
  } = {},
): Promise<ProgramRun> {
  let run: ProgramRun | undefined;
  await jest.isolateModulesAsync(async () => {
    const pulumi = (await import("@pulumi/pulumi")) as typeof PulumiModule;
    failures.length = 0;
    const resources = await installMocks(pulumi, config, options.preview ?? false, options.prior);
    let exports: Record<string, unknown>;
    try {
      exports = await import("../../index");
    } catch (err) {
      throw new ProgramFailure(err as Error, resources);
    }
    const outputs = Object.values(exports).filter((v) => pulumi.Output.isInstance(v));
    await Promise.race([Promise.all(outputs.map((o) => unwrap(o))), firstFailure()]);
    await settle(() => resources.length);
    if (failures.length > 0) {
      throw failures[0];
    }
    run = { pulumi, resources, exports };
  });
  return run as unknown as ProgramRun;
}

/** Resources of one type, by name. */
export function byType(resources: readonly RecordedResource[], type: string): RecordedResource[] {
  return resources.filter((r) => r.type === type);
}

export function named(resources: readonly RecordedResource[], name: string): RecordedResource {
  const found = resources.find((r) => r.name === name);
  if (!found) {
    throw new Error(`no resource named ${name}; have: ${resources.map((r) => r.name).join(", ")}`);
  }
  return found;
}
