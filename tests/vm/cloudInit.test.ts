import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { parseConfig } from "../../components/config/schema";
import { addressPlan } from "../../components/network/addressPlan";
import { itIfAvailable, missingPrograms } from "../harness/prerequisites";
import {
  VIP_SYSCTL_FILE,
  VIP_UNIT,
  renderSeed,
  renderVipUnit,
} from "../../components/vm/cloudInit";

const plan = addressPlan(parseConfig({}, { os: "linux", cpu: "x64" }));
const KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ9mK3cMZ1s7nq1Jx5Yp4wq2q2hKqkq8Xo2s8Z9X0a1b hardway";
const cases = [plan.gateway, plan.controls[0], plan.workers[0]].map((node) => ({
  node,
  seed: renderSeed({ node, network: plan, sshPublicKey: KEY }),
}));

interface UserData {
  hostname: string;
  fqdn: string;
  users: { name: string; ssh_authorized_keys: string[] }[];
  packages: string[];
  write_files: { path: string; content: string }[];
  runcmd: string[][];
}

describe.each(cases)("the cloud-init seed of $node.name", ({ node, seed }) => {
  const userData = parse(seed.userData) as UserData;

  it("is user-data that cloud-init's own schema accepts", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hwseed-"));
    try {
      const file = path.join(dir, "user-data");
      fs.writeFileSync(file, seed.userData);
      const check = spawnSync("cloud-init", ["schema", "-c", file], { encoding: "utf8" });
      expect({ status: check.status, output: check.stdout + check.stderr }).toEqual({
        status: 0,
        output: expect.stringContaining("Valid cloud-config") as string,
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names the host and authorises the generated key for ubuntu", () => {
    expect(seed.userData.startsWith("#cloud-config\n")).toBe(true);
    expect(userData.hostname).toBe(node.name);
    expect(userData.fqdn).toBe(node.fqdn);
    expect(userData.users[0].name).toBe("ubuntu");
    expect(userData.users[0].ssh_authorized_keys).toEqual([KEY]);
    expect(parse(seed.metaData)).toEqual({ "instance-id": node.name, "local-hostname": node.name });
  });

  it("gives the NIC with the node's MAC its static address, the host as router and DNS", () => {
    const config = parse(seed.networkConfig) as {
      network: { version: number; ethernets: Record<string, Record<string, unknown>> };
    };
    expect(config.network.version).toBe(2);
    expect(config.network.ethernets.primary).toMatchObject({
      match: { macaddress: node.mac },
      addresses:
        node.role === "gateway" ? [`${node.ip}/24`, `${plan.apiVip}/32`] : [`${node.ip}/24`],
      routes: [{ to: "default", via: plan.hostIp }],
      nameservers: { addresses: [plan.hostIp], search: [plan.domain] },
    });
    // A control node's VIP on lo comes from VIP_UNIT, after its ARP settings (below).
    expect(config.network.ethernets.lo).toBeUndefined();
  });

  it("installs the role's packages and applies kernel modules and sysctls now and at boot", () => {
    const files = Object.fromEntries(userData.write_files.map((f) => [f.path, f.content]));
    const sysctl = files["/etc/sysctl.d/60-hardway.conf"] ?? "";
    if (node.role === "gateway") {
      expect(userData.packages).toEqual(expect.arrayContaining(["ipvsadm", "ldirectord"]));
      expect(files["/etc/modules-load.d/hardway.conf"]).toBe("ip_vs\n");
      // IPVS forgets connections to a removed real server at once, so clients reconnect to a
      // live API server instead of waiting for a timeout.
      expect(sysctl).toContain("net.ipv4.vs.expire_nodest_conn = 1");
      expect(sysctl).toContain("net.ipv4.vs.expire_quiescent_template = 1");
      expect(userData.runcmd).toEqual([
        ["modprobe", "-a", "ip_vs"],
        ["sysctl", "-p", "/etc/sysctl.d/60-hardway.conf"],
      ]);
      return;
    }
    expect(userData.packages).toEqual(
      expect.arrayContaining(["nfs-common", "conntrack", "socat", "ipset"]),
    );
    expect(files["/etc/modules-load.d/hardway.conf"]).toBe("overlay\nbr_netfilter\n");
    expect(sysctl).toContain("net.ipv4.ip_forward = 1\n");
    expect(sysctl).toContain("net.bridge.bridge-nf-call-iptables = 1\n");
    expect(userData.runcmd.slice(0, 2)).toEqual([
      ["modprobe", "-a", "overlay", "br_netfilter"],
      ["sysctl", "-p", "/etc/sysctl.d/60-hardway.conf"],
    ]);
  });

  it("puts the API VIP on a control node's lo only after the ARP settings that keep it unannounced", () => {
    const files = Object.fromEntries(userData.write_files.map((f) => [f.path, f.content]));
    const unit = files[`/etc/systemd/system/${VIP_UNIT}`];
    if (node.role !== "control") {
      expect(unit).toBeUndefined();
      expect(files[VIP_SYSCTL_FILE]).toBeUndefined();
      return;
    }
    expect(files[VIP_SYSCTL_FILE]).toBe(
      "net.ipv4.conf.all.arp_ignore = 1\nnet.ipv4.conf.all.arp_announce = 2\n",
    );
    // The unit applies the ARP settings, then adds the VIP: in this order in one unit, at the
    // first boot (enabled and started by runcmd) and at every boot after.
    const exec = unit.split("\n").filter((l) => l.startsWith("ExecStart="));
    expect(exec).toEqual([
      `ExecStart=sysctl -p ${VIP_SYSCTL_FILE}`,
      `ExecStart=ip address replace ${plan.apiVip}/32 dev lo`,
    ]);
    expect(userData.runcmd[userData.runcmd.length - 1]).toEqual([
      "systemctl",
      "enable",
      "--now",
      VIP_UNIT,
    ]);
  });
});

describe("the API VIP unit", () => {
  const noSystemdAnalyze = missingPrograms(["systemd-analyze", "sysctl", "ip"]);
  /** systemd-analyze verify's complaints about a unit, without those about units of this machine. */
  const verify = (unit: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-vip-unit-"));
    try {
      const file = path.join(dir, VIP_UNIT);
      fs.writeFileSync(file, unit);
      const result = spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8" });
      const ours = `${result.stdout}${result.stderr}`
        .split("\n")
        .filter((l) => l.trim() !== "" && !/^\/(usr\/)?lib\/systemd\/system\//.test(l));
      return { status: result.status, ours };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  itIfAvailable(noSystemdAnalyze, "passes systemd-analyze verify without a warning", () => {
    expect(verify(renderVipUnit(plan.apiVip))).toEqual({ status: 0, ours: [] });
    // The check has teeth: a misspelt setting fails it.
    const broken = verify(renderVipUnit(plan.apiVip).replace("Type=oneshot", "Type=oneshott"));
    expect(broken.ours.join("\n")).toMatch(/oneshott/);
  });
});
