import { busyboxTimeSeconds, corednsPlacement, firstPoolAddress } from "./serviceChecks";

describe("busyboxTimeSeconds", () => {
  it("reads the real time busybox's time applet prints, whatever the command's status", () => {
    expect(
      busyboxTimeSeconds(
        "Command exited with non-zero status 1\nreal\t0m 0.03s\nuser\t0m 0.00s\nsys\t0m 0.00s\n",
      ),
    ).toBeCloseTo(0.03);
    expect(busyboxTimeSeconds("real\t1m 5.50s\n")).toBeCloseTo(65.5);
    expect(busyboxTimeSeconds("error: unable to upgrade connection")).toBeUndefined();
  });
});

describe("firstPoolAddress", () => {
  it("reads a range and a CIDR", () => {
    expect(firstPoolAddress("192.168.234.200-192.168.234.250")).toBe("192.168.234.200");
    expect(firstPoolAddress("10.0.0.64/26")).toBe("10.0.0.64");
    expect(() => firstPoolAddress("fd00::/64")).toThrow("unexpected IPAddressPool address");
  });
});

describe("corednsPlacement", () => {
  const pod = (name: string, node: string | undefined, ready: boolean, phase = "Running") => ({
    metadata: { name },
    spec: node === undefined ? {} : { nodeName: node },
    status: { phase, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
  });

  it("lists the nodes of Ready pods once each, and says what the others are doing", () => {
    expect(
      corednsPlacement({
        items: [
          pod("a", "worker0", true),
          pod("b", "control0", true),
          pod("c", "worker0", true),
          pod("d", undefined, false, "Pending"),
        ],
      }),
    ).toEqual({
      ready: 3,
      readyNodes: ["control0", "worker0"],
      others: ["d Pending on no node"],
    });
  });
});
