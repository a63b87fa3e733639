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

  it("declares exactly the keys the schema knows, each with a description", () => {
    expect(Object.keys(declared).sort()).toEqual(schemaKeys.sort());
    for (const [key, declaration] of Object.entries(declared)) {
      expect(`${key}: ${typeof declaration.description}`).toBe(`${key}: string`);
    }
  });

  it("declares the same defaults the schema applies", () => {
    const defaults: Record<string, unknown> = { ...parseConfig({}, host) };
    for (const [key, declaration] of Object.entries(declared)) {
      if (declaration.default !== undefined) {
        expect(`${key}=${JSON.stringify(declaration.default)}`).toBe(
          `${key}=${JSON.stringify(defaults[key.slice("hardway:".length)])}`,
        );
      }
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
});
