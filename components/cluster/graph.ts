/**
 * How long a `pulumi up` must wait in line: the longest chain of steps in which each one waits
 * for the one before, over the dependency lists the engine records. Resources that are not steps
 * (keys, certificates, components) pass dependencies through without adding to the length.
 */

export interface GraphNode {
  readonly urn: string;
  readonly dependencies: readonly string[];
}

/** The steps each step waits for, directly or through non-step resources. */
export function stepPredecessors<T extends GraphNode>(
  nodes: readonly T[],
  isStep: (node: T) => boolean,
): Map<string, string[]> {
  const byUrn = new Map(nodes.map((n) => [n.urn, n]));
  const result = new Map<string, string[]>();
  for (const node of nodes.filter(isStep)) {
    const found = new Set<string>();
    const seen = new Set<string>();
    const stack = [...node.dependencies];
    while (stack.length > 0) {
      const urn = stack.pop() as string;
      if (seen.has(urn)) {
        continue;
      }
      seen.add(urn);
      const dep = byUrn.get(urn);
      if (dep === undefined) {
        continue;
      }
      if (isStep(dep)) {
        found.add(urn);
      } else {
        stack.push(...dep.dependencies);
      }
    }
    result.set(node.urn, [...found].sort());
  }
  return result;
}

/** The longest chain of steps, first to last; ties go to the chain that sorts first by URN. */
export function longestChain<T extends GraphNode>(
  nodes: readonly T[],
  isStep: (node: T) => boolean,
): T[] {
  const byUrn = new Map(nodes.map((n) => [n.urn, n]));
  const preds = stepPredecessors(nodes, isStep);
  const best = new Map<string, string[]>();
  const visiting = new Set<string>();
  const chainTo = (urn: string): string[] => {
    const known = best.get(urn);
    if (known !== undefined) {
      return known;
    }
    if (visiting.has(urn)) {
      throw new Error(`dependency cycle through ${urn}`);
    }
    visiting.add(urn);
    let longest: string[] = [];
    for (const pred of preds.get(urn) ?? []) {
      const candidate = chainTo(pred);
      if (candidate.length > longest.length) {
        longest = candidate;
      }
    }
    visiting.delete(urn);
    const chain = [...longest, urn];
    best.set(urn, chain);
    return chain;
  };
  let result: string[] = [];
  for (const urn of [...preds.keys()].sort()) {
    const chain = chainTo(urn);
    if (chain.length > result.length) {
      result = chain;
    }
  }
  return result.map((urn) => byUrn.get(urn) as T);
}
