/**
 * The stack outputs the smoke checks and the e2e run read, validated once so a missing or
 * renamed output fails with its name instead of an undefined deep inside a check.
 */
import { z } from "zod";
import { HOST_PARTS } from "../../components/config/schema";
import { formatAddress, parseAddress, parseRange } from "../../components/network/ipv4";

const nodeSchema = z.object({
  ip: z.string(),
  role: z.enum(["gateway", "control", "worker"]),
  mac: z.string(),
});

const outputsSchema = z.object({
  kubeconfig: z.string().min(1),
  apiServer: z.string().url(),
  nodes: z.record(z.string(), nodeSchema),
  sshPrivateKey: z.string().min(1),
});

export type StackNode = z.infer<typeof nodeSchema>;
export type StackOutputs = z.infer<typeof outputsSchema>;

export function parseStackOutputs(raw: unknown): StackOutputs {
  const parsed = outputsSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join(".") || "(outputs)"}: ${issue.message}`,
    );
    throw new Error(
      `the stack outputs are not what the smoke checks need (run \`pulumi up\` first?): ${problems.join("; ")}`,
    );
  }
  return parsed.data;
}

export interface AddressPool {
  readonly first: string;
  readonly last: string;
}

/**
 * The MetalLB pool: `hardway:metallbPool` when the stack sets it, else the default host parts of
 * the VM /24, which is the one the API virtual IP lives in.
 */
export function metallbPool(outputs: StackOutputs, configured: string | undefined): AddressPool {
  if (configured !== undefined && configured.trim() !== "") {
    const range = parseRange(configured);
    return { first: formatAddress(range.first), last: formatAddress(range.last) };
  }
  const vip = parseAddress(new URL(outputs.apiServer).hostname);
  const network = vip - (vip % 256);
  return {
    first: formatAddress(network + HOST_PARTS.metallb.first),
    last: formatAddress(network + HOST_PARTS.metallb.last),
  };
}
