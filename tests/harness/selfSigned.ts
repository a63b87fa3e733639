/**
 * A self-signed P-256 certificate and key made by the real openssl, for tests that stand up an
 * HTTPS server on loopback (or present a client certificate to one): `<name>.crt` and
 * `<name>.key` in `dir`, valid for a day.
 */
import { spawnSync } from "node:child_process";

export function selfSigned(dir: string, name: string, subject: string, extensions: string[] = []) {
  const made = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
      "-days",
      "1",
      "-subj",
      subject,
      ...extensions.flatMap((extension) => ["-addext", extension]),
    ],
    { cwd: dir, encoding: "utf8" },
  );
  if (made.status !== 0) {
    throw new Error(`openssl req failed for ${name}: ${made.stderr}`);
  }
}
