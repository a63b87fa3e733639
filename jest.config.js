/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.ts$": "ts-jest",
  },
  // Real QEMU guests and etcd clusters run under software emulation on two cores.
  testTimeout: 120000,
  // Most tests wait on real programs (QEMU, etcd, openssl, shells), not on the CPU: a worker per
  // core, where Jest's default (cores - 1) runs one file at a time on two cores.
  maxWorkers: "100%",
  verbose: true,
  reporters: ["default", "<rootDir>/tests/harness/summaryReporter.js"],
  // The Pulumi SDK keeps its gRPC machinery alive after a mocked program finishes.
  forceExit: true,
};
