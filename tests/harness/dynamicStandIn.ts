/**
 * What the project's dynamic resources answer under Pulumi mocks. The PKI's resources run their
 * real providers (resources.ts), so tests get real keys and certificates to check with openssl.
 * Resources that act on a host (EnsuredScript, NodeStep) touch nothing: they answer with their
 * inputs, and an EnsuredScript with the `output` its script would print.
 */
import {
  certificateProvider,
  privateKeyProvider,
  randomSecretProvider,
} from "../../components/pki/resources";

type Inputs = Record<string, unknown>;
type State = Record<string, unknown>;

/** The instance id every mocked VM reports. */
export const MOCK_VM_INSTANCE = "00000000-0000-4000-8000-000000000001";

/** What a mocked EnsuredScript prints: the path a fetch printed, a VM its instance id. */
export function ensuredOutput(inputs: Inputs): string {
  const args = (inputs.args as string[] | undefined) ?? [];
  const flag = (name: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  if (String(inputs.script).endsWith("vm.sh")) {
    return MOCK_VM_INSTANCE;
  }
  return flag("--dest") ?? flag("--path") ?? "";
}

async function run<I, O>(
  provider: { create(inputs: I): Promise<{ id: string; outs?: O }> },
  inputs: Inputs,
): Promise<State> {
  const created = await provider.create(inputs as I);
  return { ...inputs, ...(created.outs as State) };
}

/** Resource types answered here, by Pulumi type token. */
export const standIns: Record<string, (inputs: Inputs) => State | Promise<State>> = {
  "pulumi-nodejs:dynamic/pki:PrivateKey": (inputs) => run(privateKeyProvider, inputs),
  "pulumi-nodejs:dynamic/pki:Certificate": (inputs) => run(certificateProvider, inputs),
  "pulumi-nodejs:dynamic/pki:RandomSecret": (inputs) => run(randomSecretProvider, inputs),
  "pulumi-nodejs:dynamic/host:EnsuredScript": (inputs) => ({
    ...inputs,
    output: ensuredOutput(inputs),
  }),
  "pulumi-nodejs:dynamic/cluster:NodeStep": (inputs) => ({ ...inputs }),
};
