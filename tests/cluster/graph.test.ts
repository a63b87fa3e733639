import { longestChain, stepPredecessors } from "../../components/cluster/graph";

interface Toy {
  readonly urn: string;
  readonly dependencies: readonly string[];
  readonly step: boolean;
}

const node = (urn: string, dependencies: string[], step = true): Toy => ({
  urn,
  dependencies,
  step,
});
const isStep = (n: Toy) => n.step;

describe("longestChain", () => {
  // a → b → d, a → c, and c reaches e only through the non-step "key".
  const toy = [
    node("a", []),
    node("b", ["a"]),
    node("c", ["a"]),
    node("key", ["c"], false),
    node("d", ["b"]),
    node("e", ["key"]),
    node("f", ["e", "d"]),
  ];

  it("sees through resources that are not steps", () => {
    expect(stepPredecessors(toy, isStep).get("e")).toEqual(["c"]);
  });

  it("returns the longest path, first step first", () => {
    expect(longestChain(toy, isStep).map((n) => n.urn)).toEqual(["a", "b", "d", "f"]);
  });

  it("is one step long for independent steps and empty without steps", () => {
    expect(longestChain([node("x", []), node("y", [])], isStep).map((n) => n.urn)).toEqual(["x"]);
    expect(longestChain([node("k", [], false)], isStep)).toEqual([]);
  });

  it("reports a cycle instead of looping", () => {
    expect(() => longestChain([node("p", ["q"]), node("q", ["p"])], isStep)).toThrow(/cycle/);
  });
});
