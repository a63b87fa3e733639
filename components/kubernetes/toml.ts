/**
 * A small TOML writer for the runtime configs: tables of strings, numbers, booleans and string
 * arrays, nested through quoted dotted table names, and arrays of tables (`[[registry]]` in
 * CRI-O's registries.conf). It covers exactly what containerd's and CRI-O's files need; anything
 * else is refused rather than written wrongly.
 */

export type TomlScalar = string | number | boolean;
export type TomlValue = TomlScalar | readonly string[] | TomlTable | readonly TomlTable[];
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

function isTableArray(value: TomlValue): value is readonly TomlTable[] {
  return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "object");
}

function renderValues(entries: [string, TomlValue][], out: string[]): void {
  for (const [name, value] of entries) {
    if (Array.isArray(value) && value.some((v) => typeof v !== "string")) {
      throw new Error(`${name}: TOML arrays here hold strings only, or tables only`);
    }
    const rendered = Array.isArray(value)
      ? `[${(value as readonly string[]).map(scalar).join(", ")}]`
      : scalar(value as TomlScalar);
    out.push(`${key(name)} = ${rendered}`);
  }
}

/** A table's own values, then its sub-tables and arrays of tables under their own headers. */
function renderBody(table: TomlTable, path: readonly string[], out: string[], header?: string) {
  const entries = Object.entries(table);
  const values = entries.filter(([, v]) => !isTable(v) && !isTableArray(v));
  const tables = entries.filter(([, v]) => isTable(v)) as [string, TomlTable][];
  const arrays = entries.filter(([, v]) => isTableArray(v)) as [string, readonly TomlTable[]][];
  if (header !== undefined) {
    out.push(`${out.length > 0 ? "\n" : ""}${header}`);
  }
  renderValues(values, out);
  for (const [name, child] of tables) {
    renderTable(child, [...path, name], out);
  }
  for (const [name, elements] of arrays) {
    const childPath = [...path, name];
    for (const element of elements) {
      renderBody(element, childPath, out, `[[${childPath.map(key).join(".")}]]`);
    }
  }
}

function renderTable(table: TomlTable, path: readonly string[], out: string[]): void {
  const entries = Object.values(table);
  const ownValues = entries.some((v) => !isTable(v) && !isTableArray(v));
  const needsHeader = path.length > 0 && (ownValues || entries.length === 0);
  renderBody(table, path, out, needsHeader ? `[${path.map(key).join(".")}]` : undefined);
}

/** Top-level values first, then one `[a.b."c.d"]` header per table that holds values. */
export function renderToml(document: TomlTable): string {
  const out: string[] = [];
  renderTable(document, [], out);
  return out.join("\n") + "\n";
}
