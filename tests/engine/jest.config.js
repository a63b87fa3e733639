/**
 * The engine tier (`npm run test:engine`): the real Pulumi CLI from toolchain.sh against this
 * project. Slow, so apart from `npm test`.
 */
/** @type {import('jest').Config} */
module.exports = {
  rootDir: "../..",
  testEnvironment: "node",
  roots: ["<rootDir>/tests/engine"],
  testMatch: ["**/*.engine.ts"],
  transform: {
    "^.+\\.ts$": "ts-jest",
  },
  // A fresh-stack preview of the whole program takes ~12 s; an up of the PKI ~20 s.
  testTimeout: 1_200_000,
  verbose: true,
  // One stack at a time: the CLI, its language host and providers already use both cores.
  maxWorkers: 1,
  reporters: ["default", "<rootDir>/tests/harness/summaryReporter.js"],
};
