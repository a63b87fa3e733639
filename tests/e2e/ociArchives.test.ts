import { peerAddress } from "./ociArchives";

describe("peerAddress", () => {
  it.each([
    ["[::ffff:192.168.234.1]\n", "192.168.234.1"],
    ["::ffff:10.200.0.5", "10.200.0.5"],
    ["10.200.1.7\n", "10.200.1.7"],
  ])("reads %j as %s", (printed, address) => {
    expect(peerAddress(printed)).toBe(address);
  });
});
