import { CommandResult } from "../smoke/clusterApi";
import { PreflightEnv, preflight } from "./preflight";

const ok = (stdout: string): Promise<CommandResult> =>
  Promise.resolve({ code: 0, stdout, stderr: "" });

/** A Linux workstation with everything e2e needs; each test takes one thing away. */
function goodLinux(overrides: Partial<PreflightEnv> = {}): PreflightEnv & { heads: string[] } {
  const heads: string[] = [];
  return {
    platform: "linux",
    cpu: "x64",
    env: {},
    isRoot: false,
    run(program, args) {
      const line = [program, ...args].join(" ");
      if (line === "pulumi version") return ok("v3.265.0\n");
      if (line === "qemu-system-x86_64 --version") return ok("QEMU emulator version 8.2.2\n");
      if (line === "sudo -n true") return ok("");
      return Promise.reject(new Error(`${program} is not installed or not on PATH`));
    },
    canOpenReadWrite: (file) => file === "/dev/kvm",
    head(url) {
      heads.push(url);
      return Promise.resolve(200);
    },
    heads,
    ...overrides,
  };
}

const without = (missing: string) => (program: string, args: readonly string[]) =>
  program === missing
    ? Promise.reject(new Error(`${program} is not installed or not on PATH`))
    : goodLinux().run(program, args);

describe("preflight", () => {
  it("passes on a host with the CLI, QEMU and KVM, the internet and sudo", async () => {
    const env = goodLinux();
    const result = await preflight(env);
    expect(result).toEqual({
      ok: true,
      problems: [],
      notes: [
        "Pulumi CLI v3.265.0",
        "QEMU emulator version 8.2.2",
        "/dev/kvm usable",
        "cloud-images.ubuntu.com reachable (HTTP 200)",
        "sudo -n works",
      ],
      accelerator: "auto",
    });
    // The only outbound request: a HEAD to the image's own download host.
    expect(env.heads).toEqual([
      "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img",
    ]);
  });

  it("stops without the Pulumi CLI, e.g. when the npm package cannot download it offline", async () => {
    const result = await preflight(
      goodLinux({
        run: (program, args) =>
          program === "pulumi"
            ? Promise.resolve({
                code: 1,
                stdout: "Downloading pulumi v3.265.0...\n",
                stderr: "pulumi: fetch failed\n",
              })
            : goodLinux().run(program, args),
      }),
    );
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      expect.stringMatching(/^the Pulumi CLI: `pulumi version` failed \(pulumi: fetch failed\)/),
    ]);
  });

  it("stops without QEMU", async () => {
    const result = await preflight(goodLinux({ run: without("qemu-system-x86_64") }));
    expect(result.problems).toEqual([
      "a hypervisor: qemu-system-x86_64 is missing (qemu-system-x86_64 is not installed or not on PATH); " +
        "install QEMU (e.g. apt-get install qemu-system)",
    ]);
  });

  it("stops without a usable /dev/kvm unless HARDWAY_E2E_ACCELERATOR=tcg", async () => {
    const noKvm = await preflight(goodLinux({ canOpenReadWrite: () => false }));
    expect(noKvm.ok).toBe(false);
    expect(noKvm.problems).toEqual([
      expect.stringMatching(
        /^a hypervisor: \/dev\/kvm is missing or not read-write .* set HARDWAY_E2E_ACCELERATOR=tcg/,
      ),
    ]);
    const tcg = await preflight(
      goodLinux({ canOpenReadWrite: () => false, env: { HARDWAY_E2E_ACCELERATOR: "tcg" } }),
    );
    expect(tcg.ok).toBe(true);
    expect(tcg.accelerator).toBe("tcg");
  });

  it("asks macOS for Hypervisor.framework and HEADs the arm64 image", async () => {
    const env = goodLinux({
      platform: "darwin",
      cpu: "arm64",
      run: (program, args) => {
        const line = [program, ...args].join(" ");
        if (line === "sysctl -n kern.hv_support") return ok("1\n");
        if (line === "qemu-system-aarch64 --version") return ok("QEMU emulator version 9.1.0\n");
        return goodLinux().run(program, args);
      },
    });
    const result = await preflight(env);
    expect(result.ok).toBe(true);
    expect(result.notes).toContain("Hypervisor.framework available");
    expect(env.heads[0]).toMatch(/cloudimg-arm64\.img$/);
  });

  it("stops without the internet, naming the host it tried", async () => {
    const result = await preflight(
      goodLinux({
        head: () => Promise.reject(new Error("getaddrinfo ENOTFOUND cloud-images.ubuntu.com")),
      }),
    );
    expect(result.problems).toEqual([
      expect.stringMatching(
        /^the internet: HEAD https:\/\/cloud-images\.ubuntu\.com\/\S+ failed \(getaddrinfo ENOTFOUND/,
      ),
    ]);
    const notFound = await preflight(goodLinux({ head: () => Promise.resolve(404) }));
    expect(notFound.problems).toEqual([
      expect.stringMatching(/^the internet: HEAD .* answered HTTP 404$/),
    ]);
  });

  it("stops without root or passwordless sudo, and needs no sudo as root", async () => {
    const result = await preflight(goodLinux({ run: without("sudo") }));
    expect(result.problems).toEqual([
      expect.stringMatching(/^root: `sudo -n true` failed .* Run `sudo -v` first/),
    ]);
    const asRoot = await preflight(goodLinux({ run: without("sudo"), isRoot: true }));
    expect(asRoot.ok).toBe(true);
  });

  it("names every missing thing at once", async () => {
    const result = await preflight({
      ...goodLinux(),
      run: (program) => Promise.reject(new Error(`${program} is not installed or not on PATH`)),
      canOpenReadWrite: () => false,
      head: () => Promise.reject(new Error("offline")),
    });
    expect(result.problems.map((p) => p.split(":")[0])).toEqual([
      "the Pulumi CLI",
      "a hypervisor",
      "a hypervisor",
      "the internet",
      "root",
    ]);
  });
});
