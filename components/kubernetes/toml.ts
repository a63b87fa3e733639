/**
 * A small TOML writer for the two runtime configs: tables of strings, numbers, booleans and
 * string arrays, nested through quoted dotted table names. It covers exactly what containerd's
 * and CRI-O's files need; anything else is refused rather than written wrongly.
 */

export type TomlScalar = string | number | boolean;
export type TomlValue = TomlScalar | readonly string[] | TomlTable;
export interface TomlTable {
  readonly [key: string]: TomlValue;
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

function key(name: string): string {
  return BARE_KEY.test(name) ? name : JSON.stringify(name);
}

function scalar(value: TomlScalar): string {
  if (typeof value === "string") {
    // JSON string escapes are a subset of TOML basic-string escapes.
    return JSON.stringify(value);
  }
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new Error(`TOML cannot hold the number ${value}`);
  }
  return String(value);
}

function isTable(value: TomlValue): value is TomlTable {
  return typeof value === "object" && !Array.isArray(value);
}

function renderTable(table: TomlTable, path: readonly string[], out: string[]): void {
  const entries = Object.entries(table);
  const values = entries.filter(([, v]) => !isTable(v));
  const tables = entries.filter(([, v]) => isTable(v)) as [string, TomlTable][];
  if (path.length > 0 && (values.length > 0 || tables.length === 0)) {
    out.push(`${out.length > 0 ? "\n" : ""}[${path.map(key).join(".")}]`);
  }
  for (const [name, value] of values) {
    const rendered = Array.isArray(value)
      ? `[${(value as readonly string[]).map(scalar).join(", ")}]`
      : scalar(value as TomlScalar);
    out.push(`${key(name)} = ${rendered}`);
  }
  for (const [name, child] of tables) {
    renderTable(child, [...path, name], out);
  }
}

/** Top-level values first, then one `[a.b."c.d"]` header per table that holds values. */
export function renderToml(document: TomlTable): string {
  const out: string[] = [];
  renderTable(document, [], out);
  return out.join("\n") + "\n";
}
