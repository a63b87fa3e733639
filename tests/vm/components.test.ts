/**
 * The VM components under Pulumi mocks: what they register for the default plan, and what
 * switching the guest architecture changes.
 */
import * as pulumi from "@pulumi/pulumi";
import { Arch, parseConfig } from "../../components/config/schema";
import { addressPlan } from "../../components/network/addressPlan";
import { BaseImage } from "../../components/vm/baseImage";
import { resolveAccelerator } from "../../components/vm/qemu";
import { VirtualMachine } from "../../components/vm/virtualMachine";
import { MOCK_VM_INSTANCE } from "../harness/dynamicStandIn";
import { RecordedResource, installMocks, unwrap } from "../harness/mocks";

const PRIVATE_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n";

const HOST_PRIVATE_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-host-key\n-----END OPENSSH PRIVATE KEY-----\n";

interface Built {
  readonly image: BaseImage;
  readonly vms: VirtualMachine[];
}

function build(arch: Arch, prefix: string): Built {
  const host = { os: "linux" as const, cpu: "x64" };
  const config = parseConfig({ arch }, host);
  const plan = addressPlan(config);
  const accelerator = resolveAccelerator(config.accelerator, arch, {
    hostOs: "linux",
    hostCpu: "x64",
    kvmUsable: true,
  });
  const image = new BaseImage(`${prefix}-image`, {
    url: config.image.url,
    holder: "hardway-test",
    cacheDir: "/home/u/.cache/hardway/images",
  });
  const vms = plan.nodes.map(
    (node) =>
      new VirtualMachine(`${prefix}-${node.name}`, {
        node,
        network: plan,
        stack: "test",
        arch,
        accelerator,
        size: config.vm[node.role],
        baseImage: image.path,
        attachment: { kind: "bridge", bridge: "hwbr-test" },
        hostOs: "linux",
        sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHardwayTest hardway",
        sshPrivateKey: pulumi.secret(PRIVATE_KEY),
        hostKey: {
          publicKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost${node.name}`,
          privateKey: pulumi.secret(HOST_PRIVATE_KEY),
        },
      }),
  );
  return { image, vms };
}

function flag(argv: readonly string[], name: string): string {
  return argv[argv.indexOf(name) + 1];
}

describe("the VM components under mocks", () => {
  let resources: RecordedResource[];
  let amd64: Built;
  let arm64: Built;

  beforeAll(async () => {
    resources = await installMocks(pulumi);
    amd64 = build("amd64", "amd");
    arm64 = build("arm64", "arm");
    await Promise.all([...amd64.vms, ...arm64.vms].map((vm) => unwrap(vm.sshHost)));
  });

  it("registers seven VMs with the plan's names, IPs, MACs and the role sizes", () => {
    const vms = resources.filter(
      (r) => r.type === "hardway:vm:VirtualMachine" && r.name.startsWith("amd-"),
    );
    expect(vms.map((r) => r.name)).toEqual([
      "amd-gateway",
      "amd-control0",
      "amd-control1",
      "amd-control2",
      "amd-worker0",
      "amd-worker1",
      "amd-worker2",
    ]);
    const scripts = resources.filter((r) => r.name.startsWith("amd-") && r.name.endsWith("-qemu"));
    expect(scripts).toHaveLength(7);
    const seen = amd64.vms.map((vm) => {
      const argv = vm.qemuArgv;
      return {
        name: vm.nodeName,
        ip: vm.ip,
        mac: flag(argv, "-device").replace(/^.*mac=/, ""),
        cpus: Number(flag(argv, "-smp")),
        memory: flag(argv, "-m"),
      };
    });
    expect(seen).toEqual([
      { name: "gateway", ip: "192.168.234.10", mac: "52:54:c0:a8:ea:0a", cpus: 1, memory: "512M" },
      {
        name: "control0",
        ip: "192.168.234.11",
        mac: "52:54:c0:a8:ea:0b",
        cpus: 2,
        memory: "2048M",
      },
      {
        name: "control1",
        ip: "192.168.234.12",
        mac: "52:54:c0:a8:ea:0c",
        cpus: 2,
        memory: "2048M",
      },
      {
        name: "control2",
        ip: "192.168.234.13",
        mac: "52:54:c0:a8:ea:0d",
        cpus: 2,
        memory: "2048M",
      },
      { name: "worker0", ip: "192.168.234.21", mac: "52:54:c0:a8:ea:15", cpus: 2, memory: "2048M" },
      { name: "worker1", ip: "192.168.234.22", mac: "52:54:c0:a8:ea:16", cpus: 2, memory: "2048M" },
      { name: "worker2", ip: "192.168.234.23", mac: "52:54:c0:a8:ea:17", cpus: 2, memory: "2048M" },
    ]);
  });

  it("runs vm.sh as root with the VM's identity in args and the private key only in secret stdin", () => {
    const worker = resources.find((r) => r.name === "amd-worker0-qemu") as RecordedResource;
    expect(worker.parentUrn).toBe(resources.find((r) => r.name === "amd-worker0")?.urn);
    expect(worker.inputs.script).toBe("vm/vm.sh");
    expect(worker.inputs.asRoot).toBe(true);
    const args = worker.inputs.args as string[];
    expect(args.slice(0, 2)).toEqual(["--state-dir", "/var/lib/hardway/test/vms/worker0"]);
    expect(args).toEqual(
      expect.arrayContaining(["--tap", "--bridge", "hwbr-test", "--ssh-host", "192.168.234.21"]),
    );
    expect(JSON.stringify(args)).not.toContain("PRIVATE KEY");
    expect(worker.secretInputs).toContain("stdin");
    const bundle = Object.fromEntries(
      String(worker.inputs.stdin)
        .trimEnd()
        .split("\n")
        .map((l) => l.split(" "))
        .map(([k, v]) => [k, Buffer.from(v, "base64").toString()]),
    );
    expect(bundle["ssh-private-key"]).toBe(PRIVATE_KEY);
    expect(bundle["host-key"]).toBe("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostworker0");
    // cloud-init installs the PKI's host key, so the host can pin it.
    expect(bundle["user-data"]).toContain("ed25519_private: |");
    expect(bundle["user-data"]).toContain("not-a-host-key");
    expect(bundle["disk-size"]).toBe("20");
    expect(bundle["network-config"]).toContain("macaddress: 52:54:c0:a8:ea:15");
    expect(bundle["qemu-argv"].split("\0").slice(0, -1)).toEqual(amd64.vms[4].qemuArgv);
  });

  it("fetches the base image into a cache path known before the download", async () => {
    const fetch = resources.find((r) => r.name === "amd-image-fetch") as RecordedResource;
    expect(fetch.type).toBe("pulumi-nodejs:dynamic/host:EnsuredScript");
    expect(fetch.inputs.script).toBe("vm/fetch-image.sh");
    const args = fetch.inputs.args as string[];
    expect(args.slice(0, 4)).toEqual(["--holder", "hardway-test", "--url", amd64.image.url]);
    const dest = args[args.indexOf("--dest") + 1];
    expect(dest).toMatch(
      /^\/home\/u\/\.cache\/hardway\/images\/url-[0-9a-f]{16}\/ubuntu-24\.04-server-cloudimg-amd64\.img$/,
    );
    expect(await unwrap(amd64.image.path)).toEqual({ value: dest, secret: false });
    const worker = resources.find((r) => r.name === "amd-worker0-qemu") as RecordedResource;
    expect(worker.inputs.args).toEqual(expect.arrayContaining(["--base-image", dest]));
  });

  it("reports each VM's instance id, which every step on it takes as input", async () => {
    expect(await unwrap(amd64.vms[2].instance)).toEqual({ value: MOCK_VM_INSTANCE, secret: false });
  });

  it("switching arch changes the QEMU binary, machine, firmware and image", () => {
    const [a, r] = [amd64.vms[1].qemuArgv, arm64.vms[1].qemuArgv];
    expect([a[0], r[0]]).toEqual(["qemu-system-x86_64", "qemu-system-aarch64"]);
    expect([flag(a, "-machine"), flag(r, "-machine")]).toEqual(["q35", "virt"]);
    expect([flag(a, "-accel"), flag(r, "-accel")]).toEqual(["kvm", "tcg,tb-size=1024"]);
    expect([flag(a, "-cpu"), flag(r, "-cpu")]).toEqual(["host", "max"]);
    expect(flag(a, "-drive")).toContain("/usr/share/OVMF/OVMF_CODE_4M.fd");
    expect(flag(r, "-drive")).toContain("/usr/share/AAVMF/AAVMF_CODE.fd");
    expect([amd64.image.url, arm64.image.url]).toEqual([
      "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img",
      "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-arm64.img",
    ]);
    const armArgs = (resources.find((r) => r.name === "arm-control0-qemu") as RecordedResource)
      .inputs.args as string[];
    expect(armArgs).toEqual(
      expect.arrayContaining(["--efi-vars-template", "/usr/share/AAVMF/AAVMF_VARS.fd"]),
    );
  });
});
