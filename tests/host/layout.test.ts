import { MAX_IFNAME, bridgeName, natTableName } from "../../components/host/layout";

const stacks = [
  "dev",
  "prod",
  "a",
  "My.Stack_Name",
  "a-very-long-stack-name-for-testing",
  "x".repeat(80),
];

describe("bridgeName", () => {
  it.each(stacks)("fits a Linux interface name for stack %p", (stack) => {
    const name = bridgeName(stack);
    expect(name.length).toBeLessThanOrEqual(MAX_IFNAME);
    expect(name).toMatch(/^hw-[a-z0-9-]+$/);
  });

  it("is stable", () => {
    expect(bridgeName("dev")).toBe(bridgeName("dev"));
  });

  it("differs between stacks, even when their names only differ past the truncation", () => {
    const names = [...stacks, "a-very-long-stack-name-for-prod"].map(bridgeName);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe("natTableName", () => {
  it.each(stacks)("is a plain nft identifier for stack %p", (stack) => {
    expect(natTableName(stack)).toMatch(/^hardway_[a-z0-9_]+$/);
  });

  it("differs between stacks", () => {
    expect(natTableName("dev")).not.toBe(natTableName("prod"));
    expect(natTableName("my.stack")).not.toBe(natTableName("my_stack"));
  });
});
