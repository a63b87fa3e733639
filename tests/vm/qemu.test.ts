import { Arch } from "../../components/config/schema";
import {
  AcceleratorFacts,
  QemuSpec,
  firmwareFor,
  qemuArgv,
  resolveAccelerator,
  tapName,
  tcgCacheMiB,
  vmFiles,
} from "../../components/vm/qemu";
import { encodeArgv, renderBundle, vmScriptFlags } from "../../components/vm/vmScript";

const linux = (cpu: string, kvm: boolean): AcceleratorFacts => ({
  hostOs: "linux",
  hostCpu: cpu,
  kvmUsable: kvm,
});
const macos: AcceleratorFacts = { hostOs: "darwin", hostCpu: "arm64", kvmUsable: false };

describe("resolveAccelerator", () => {
  it.each<[string, Parameters<typeof resolveAccelerator>, string]>([
    ["macOS runs its own arch with hvf", ["auto", "arm64", macos], "hvf"],
    ["macOS emulates a foreign arch", ["auto", "amd64", macos], "tcg"],
    ["Linux with /dev/kvm uses kvm", ["auto", "amd64", linux("x64", true)], "kvm"],
    ["Linux without /dev/kvm emulates", ["auto", "amd64", linux("x64", false)], "tcg"],
    ["Linux emulates a foreign arch even with kvm", ["auto", "arm64", linux("x64", true)], "tcg"],
    ["tcg is always honoured", ["tcg", "amd64", linux("x64", true)], "tcg"],
    ["an explicit kvm that works", ["kvm", "arm64", linux("arm64", true)], "kvm"],
  ])("%s", (_what, args, expected) => {
    expect(resolveAccelerator(...args)).toBe(expected);
  });

  it.each<[string, Parameters<typeof resolveAccelerator>, RegExp]>([
    ["hvf on Linux", ["hvf", "amd64", linux("x64", true)], /needs a macOS host/],
    ["kvm without /dev/kvm", ["kvm", "amd64", linux("x64", false)], /usable \/dev\/kvm/],
    ["kvm on macOS", ["kvm", "arm64", macos], /needs a Linux host/],
    ["hardware for a foreign arch", ["hvf", "amd64", macos], /cannot run amd64 guests/],
  ])("refuses %s and says what to set", (_what, args, message) => {
    expect(() => resolveAccelerator(...args)).toThrow(message);
  });
});

function spec(arch: Arch, overrides: Partial<QemuSpec> = {}): QemuSpec {
  return {
    name: "dev-worker0",
    arch,
    accelerator: "kvm",
    cpus: 2,
    memory: 2048,
    mac: "52:54:c0:a8:ea:15",
    nic: { kind: "tap", ifname: "hwabcd-worker0" },
    files: vmFiles("/var/lib/hardway/dev/vms/worker0"),
    firmware: firmwareFor(arch, "linux"),
    ...overrides,
  };
}

/** The value after each occurrence of a flag. */
function values(argv: readonly string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
}

describe("qemuArgv", () => {
  it("starts an amd64 guest with q35, OVMF, the overlay, the seed and a tap NIC", () => {
    const argv = qemuArgv(spec("amd64"));
    expect(argv[0]).toBe("qemu-system-x86_64");
    expect(values(argv, "-machine")).toEqual(["q35"]);
    expect(values(argv, "-accel")).toEqual(["kvm"]);
    expect(values(argv, "-cpu")).toEqual(["host"]);
    expect(values(argv, "-smp")).toEqual(["2"]);
    expect(values(argv, "-m")).toEqual(["2048M"]);
    expect(values(argv, "-drive")).toEqual([
      "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
      "if=pflash,format=raw,unit=1,file=/var/lib/hardway/dev/vms/worker0/efi-vars.fd",
      "if=virtio,format=qcow2,file=/var/lib/hardway/dev/vms/worker0/disk.qcow2",
      "if=virtio,format=raw,readonly=on,file=/var/lib/hardway/dev/vms/worker0/seed.iso",
    ]);
    expect(values(argv, "-netdev")).toEqual([
      "tap,id=net0,ifname=hwabcd-worker0,script=no,downscript=no",
    ]);
    expect(values(argv, "-device")).toContain("virtio-net-pci,netdev=net0,mac=52:54:c0:a8:ea:15");
    expect(values(argv, "-pidfile")).toEqual(["/var/lib/hardway/dev/vms/worker0/qemu.pid"]);
    expect(values(argv, "-qmp")).toEqual([
      "unix:/var/lib/hardway/dev/vms/worker0/qmp.sock,server=on,wait=off",
    ]);
    expect(values(argv, "-chardev")).toEqual([
      "file,id=serial0,path=/var/lib/hardway/dev/vms/worker0/serial.log,append=on",
    ]);
    expect(values(argv, "-display")).toEqual(["none"]);
    expect(argv).toContain("-daemonize");
  });

  it("starts an arm64 guest on macOS with virt, hvf, Homebrew's edk2 and vmnet-shared", () => {
    const argv = qemuArgv(
      spec("arm64", {
        accelerator: "hvf",
        firmware: firmwareFor("arm64", "darwin", "/opt/homebrew"),
        nic: {
          kind: "vmnet-shared",
          startAddress: "192.168.234.1",
          endAddress: "192.168.234.99",
          subnetMask: "255.255.255.0",
        },
      }),
    );
    expect(argv[0]).toBe("qemu-system-aarch64");
    expect(values(argv, "-machine")).toEqual(["virt"]);
    expect(values(argv, "-accel")).toEqual(["hvf"]);
    expect(values(argv, "-drive")[0]).toBe(
      "if=pflash,format=raw,unit=0,readonly=on,file=/opt/homebrew/share/qemu/edk2-aarch64-code.fd",
    );
    expect(values(argv, "-netdev")).toEqual([
      "vmnet-shared,id=net0,start-address=192.168.234.1,end-address=192.168.234.99,subnet-mask=255.255.255.0",
    ]);
  });

  it("emulates with the richest CPU model under TCG and uses AAVMF on Debian", () => {
    const argv = qemuArgv(spec("arm64", { accelerator: "tcg" }));
    expect(values(argv, "-cpu")).toEqual(["max"]);
    // Half the guest's 2 GiB for translated code (tcgCacheMiB).
    expect(values(argv, "-accel")).toEqual(["tcg,tb-size=1024"]);
    expect(values(argv, "-drive")[0]).toContain("file=/usr/share/AAVMF/AAVMF_CODE.fd");
  });

  it("boots a kernel directly without firmware when one is given", () => {
    const argv = qemuArgv(
      spec("amd64", {
        firmware: undefined,
        kernel: { kernel: "/k", initrd: "/i", append: "console=ttyS0" },
      }),
    );
    expect([values(argv, "-kernel"), values(argv, "-initrd"), values(argv, "-append")]).toEqual([
      ["/k"],
      ["/i"],
      ["console=ttyS0"],
    ]);
    expect(values(argv, "-drive").some((d) => d.includes("pflash"))).toBe(false);
  });

  it.each<[Partial<QemuSpec>, RegExp]>([
    [{ cpus: 0 }, /cpus must be a whole number/],
    [{ memory: 1.5 }, /memory must be a whole number of MiB/],
    [{ mac: "52:54:C0:A8:EA:15" }, /not a lowercase MAC address/],
    [{ firmware: undefined }, /either firmware .* or kernel/],
  ])("refuses %o", (overrides, message) => {
    expect(() => qemuArgv(spec("amd64", overrides))).toThrow(message);
  });
});

describe("tcgCacheMiB", () => {
  it("keeps half the guest's memory of translated code, never less than 256 MiB", () => {
    expect([512, 1024, 2048, 4096].map(tcgCacheMiB)).toEqual([256, 512, 1024, 2048]);
    expect(tcgCacheMiB(2047)).toBe(1023);
  });
});

describe("tapName", () => {
  it("fits Linux's 15-byte limit, is stable and differs between stacks and nodes", () => {
    const names = ["dev", "a-very-long-stack-name-indeed"].flatMap((stack) =>
      ["gateway", "control0", "worker39", "a-node-with-a-long-name"].map((node) =>
        tapName(stack, node),
      ),
    );
    for (const name of names) {
      expect(name).toMatch(/^hw[a-z0-9-]{1,13}$/);
    }
    expect(new Set(names).size).toBe(names.length);
    expect(tapName("dev", "worker0")).toBe(tapName("dev", "worker0"));
    expect(tapName("dev", "worker0")).toMatch(/^hw[0-9a-f]{4}-worker0$/);
  });
});

describe("the vm.sh calling convention", () => {
  it("puts identity in flags and the changeable parts, secrets included, only in the bundle", () => {
    const flags = vmScriptFlags({
      stateDir: "/var/lib/hardway/dev/vms/worker0",
      baseImage: "/cache/sha256-x.img",
      tap: { name: "hwabcd-worker0", bridge: "hwbr-dev" },
      ssh: { host: "192.168.234.21", user: "ubuntu" },
    });
    expect(flags).toEqual([
      "--state-dir",
      "/var/lib/hardway/dev/vms/worker0",
      "--base-image",
      "/cache/sha256-x.img",
      "--tap",
      "hwabcd-worker0",
      "--bridge",
      "hwbr-dev",
      "--ssh-host",
      "192.168.234.21",
      "--ssh-user",
      "ubuntu",
    ]);
    const bundle = renderBundle({
      "qemu-argv": encodeArgv(["a b", "c"]),
      "ssh-private-key": "SECRET\n",
    });
    expect(bundle).not.toContain("SECRET");
    const lines = bundle
      .trimEnd()
      .split("\n")
      .map((l) => l.split(" "));
    expect(lines.map(([name, b64]) => [name, Buffer.from(b64, "base64").toString()])).toEqual([
      ["qemu-argv", "a b\0c\0"],
      ["ssh-private-key", "SECRET\n"],
    ]);
  });
});
