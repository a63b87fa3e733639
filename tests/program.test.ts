import { byType, runProgram } from "./harness/mocks";

describe("the program under mocks", () => {
  it("registers the PKI with the default config", async () => {
    const run = await runProgram();
    expect(byType(run.resources, "tls:index/locallySignedCert:LocallySignedCert").length).toBeGreaterThan(10);
  });
});
