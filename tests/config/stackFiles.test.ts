/**
 * Pulumi.yaml declares the config contract and Pulumi.dev.yaml spells out the defaults; both
 * must agree with the schema the program actually enforces.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { decodeConfigValues } from "../../components/config/load";
import { configSchema, parseConfig } from "../../components/config/schema";

const root = path.join(__dirname, "..", "..");
const readYaml = (file: string) =>
  parse(fs.readFileSync(path.join(root, file), "utf8")) as Record<string, unknown>;
const host = { os: "linux" as const, cpu: "x64" };

interface Declaration {
  type?: string;
  default?: unknown;
  description?: string;
}

describe("the stack files", () => {
  const project = readYaml("Pulumi.yaml");
  const declared = project.config as Record<string, Declaration>;
  const schemaKeys = Object.keys(configSchema.shape).map((k) => `hardway:${k}`);

  it("names the project hardway and keeps state in a local file backend", () => {
    expect(project.name).toBe("hardway");
    expect((project.backend as { url: string }).url).toMatch(/^file:\/\//);
  });

  it("runs the program with the compiler options `npm run build` checks it with, minus the check", () => {
    const runtime = project.runtime as { options: { typescript: boolean; tsconfig: string } };
    expect(runtime.options.typescript).toBe(true);
    const pulumiTsconfig = JSON.parse(
      fs.readFileSync(path.join(root, runtime.options.tsconfig), "utf8"),
    ) as { extends: string; compilerOptions: Record<string, unknown>; include: string[] };
    // Pulumi reads noCheck from this file itself (not through extends) to transpile only.
    expect(pulumiTsconfig.extends).toBe("./tsconfig.json");
    expect(pulumiTsconfig.compilerOptions).toEqual({ noCheck: true });
    const checked = JSON.parse(fs.readFileSync(path.join(root, "tsconfig.json"), "utf8")) as {
      include: string[];
    };
    expect(pulumiTsconfig.include.every((glob) => checked.include.includes(glob))).toBe(true);
    expect(pulumiTsconfig.include).toContain(project.main);
  });

  it("declares exactly the keys the schema knows, each with a description", () => {
    expect(Object.keys(declared).sort()).toEqual(schemaKeys.sort());
    for (const [key, declaration] of Object.entries(declared)) {
      expect(`${key}: ${typeof declaration.description}`).toBe(`${key}: string`);
    }
  });

  it("gives every key a default (Pulumi requires keys without one) that means what the schema's does", () => {
    const shape = configSchema.shape as Record<string, { parse(value: unknown): unknown }>;
    for (const [key, declaration] of Object.entries(declared)) {
      expect(`${key}: ${declaration.default !== undefined}`).toBe(`${key}: true`);
      const field = shape[key.slice("hardway:".length)];
      expect(`${key}=${JSON.stringify(field.parse(declaration.default))}`).toBe(
        `${key}=${JSON.stringify(field.parse(undefined))}`,
      );
    }
  });

  it("has a dev stack that is the defaults spelled out", () => {
    const stack = readYaml("Pulumi.dev.yaml").config as Record<string, unknown>;
    const asStrings = Object.fromEntries(
      Object.entries(stack).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
    const fromStack = parseConfig(decodeConfigValues(asStrings), host);
    expect(fromStack).toEqual(parseConfig({}, host));
  });

  it("has a README config table with exactly the schema's keys", () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const documented = [...readme.matchAll(/^\| `(hardway:[A-Za-z]+)` +\|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...schemaKeys].sort());
  });

  it("names only files in the README that exist", () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const named = [...readme.matchAll(/`((?:components|assets|tests)\/[\w./-]+)`/g)].map(
      (m) => m[1],
    );
    expect(named.length).toBeGreaterThan(10);
    for (const file of named) {
      expect(`${file}: ${fs.existsSync(path.join(root, file))}`).toBe(`${file}: true`);
    }
  });
});
