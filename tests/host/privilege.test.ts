import { privilegedArgv, sudoWouldPrompt } from "../../components/host/privilege";

describe("privilegedArgv", () => {
  it.each([
    { asRoot: true, uid: 1000, expected: ["sudo", "-n", "--", "ip", "link"] },
    { asRoot: true, uid: 0, expected: ["ip", "link"] },
    { asRoot: false, uid: 1000, expected: ["ip", "link"] },
    { asRoot: false, uid: 0, expected: ["ip", "link"] },
  ])("asRoot=$asRoot uid=$uid runs $expected", ({ asRoot, uid, expected }) => {
    expect(privilegedArgv(["ip", "link"], { asRoot, uid })).toEqual(expected);
  });
});

describe("sudoWouldPrompt", () => {
  it.each([
    ["sudo: a password is required\n", true],
    ["sudo: a terminal is required to read the password; either use the -S option", true],
    ["RTNETLINK answers: Operation not permitted\n", false],
    ["", false],
  ])("%p → %p", (stderr, expected) => {
    expect(sudoWouldPrompt(stderr)).toBe(expected);
  });
});
