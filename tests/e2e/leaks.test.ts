import { bridgeName, natTableName } from "../../components/host/layout";
import { tapName } from "../../components/vm/qemu";
import { CommandResult } from "../smoke/clusterApi";
import {
  HostState,
  LeakTarget,
  findLeaks,
  parseNetstatRoutes,
  parsePs,
  readHostState,
} from "./leaks";

const STACK = "e2e-1a2b3c";
const OTHER = "dev";

const nodes = {
  gateway: { ip: "192.168.234.10", role: "gateway" },
  control0: { ip: "192.168.234.11", role: "control" },
  worker0: { ip: "192.168.234.21", role: "worker" },
};
const target: LeakTarget = { stack: STACK, nodes };

/** A host that runs the "dev" stack on another subnet, plus the usual unrelated things. */
const clean: HostState = {
  processes: [
    { pid: 1, command: "/sbin/init" },
    {
      pid: 400,
      command:
        `qemu-system-x86_64 -name ${OTHER}-control0 -drive if=virtio,format=qcow2,` +
        `file=/var/lib/hardway/${OTHER}/vms/control0/disk.qcow2 -daemonize`,
    },
    { pid: 401, command: `dnsmasq --conf-file=/var/lib/hardway/${OTHER}/dnsmasq.conf` },
    // A stack whose name starts like ours must not be mistaken for it.
    { pid: 402, command: `dnsmasq --conf-file=/var/lib/hardway/${STACK}x/dnsmasq.conf` },
    { pid: 403, command: "/usr/sbin/dnsmasq --conf-file=/etc/dnsmasq.conf" },
  ],
  links: [
    { ifname: "lo" },
    { ifname: "eth0" },
    { ifname: bridgeName(OTHER), kind: "bridge" },
    { ifname: tapName(OTHER, "control0"), kind: "tun", master: bridgeName(OTHER) },
    { ifname: "docker0", kind: "bridge" },
  ],
  routes: [
    { dst: "default", gateway: "192.0.2.1", dev: "eth0" },
    { dst: "10.200.0.0/24", gateway: "192.168.50.11", dev: bridgeName(OTHER) },
  ],
  nftTables: [
    { family: "ip", name: natTableName(OTHER) },
    { family: "inet", name: "filter" },
  ],
  iptablesRules: [
    `-A FORWARD -i ${bridgeName(OTHER)} -m comment --comment hardway-${bridgeName(OTHER)} -j ACCEPT`,
  ],
  exportsText: `/srv/nfs *(ro)\n# BEGIN hardway ${OTHER}\n/var/lib/hardway/${OTHER}/nfs 192.168.50.0/24(rw)\n# END hardway ${OTHER}\n`,
  sharedDnsmasqConf: `# BEGIN hardway ${OTHER}\nlisten-address=192.168.50.1\n# END hardway ${OTHER}\n`,
  stateDirs: [`/var/lib/hardway/${OTHER}`, `/var/lib/hardway/${STACK}x`],
};

describe("findLeaks", () => {
  it("reports nothing on a host without the stack, even with another stack running", () => {
    expect(findLeaks(clean, target)).toEqual([]);
  });

  const bridge = bridgeName(STACK);
  const leftovers: [string, Partial<HostState>, string][] = [
    [
      "vm-process",
      {
        processes: [
          {
            pid: 900,
            command: `/usr/bin/qemu-system-x86_64 -name ${STACK}-worker0 -pidfile /var/lib/hardway/${STACK}/vms/worker0/qemu.pid`,
          },
        ],
      },
      `pid 900: /usr/bin/qemu-system-x86_64 -name ${STACK}-worker0 -pidfile /var/lib/hardway/${STACK}/vms/worker0/qemu.pid`,
    ],
    [
      "tap",
      { links: [{ ifname: tapName(STACK, "worker0"), kind: "tun" }] },
      tapName(STACK, "worker0"),
    ],
    ["tap", { links: [{ ifname: "veth9", master: bridge }] }, "veth9"],
    ["bridge", { links: [{ ifname: bridge, kind: "bridge" }] }, bridge],
    [
      "nat-table",
      { nftTables: [{ family: "ip", name: natTableName(STACK) }] },
      `ip ${natTableName(STACK)}`,
    ],
    [
      "nat-rule",
      {
        iptablesRules: [
          `-A DOCKER-USER -o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment hardway-${bridge} -j ACCEPT`,
        ],
      },
      `-A DOCKER-USER -o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment hardway-${bridge} -j ACCEPT`,
    ],
    [
      "dnsmasq",
      {
        processes: [
          { pid: 77, command: `dnsmasq --conf-file=/var/lib/hardway/${STACK}/dnsmasq.conf` },
        ],
      },
      `pid 77: dnsmasq --conf-file=/var/lib/hardway/${STACK}/dnsmasq.conf`,
    ],
    [
      "dnsmasq",
      {
        sharedDnsmasqConf: `# BEGIN hardway ${STACK}\nlisten-address=192.168.234.1\n# END hardway ${STACK}\n`,
      },
      `Homebrew dnsmasq.conf: # BEGIN hardway ${STACK}`,
    ],
    [
      "export-block",
      {
        exportsText: `# BEGIN hardway ${STACK}\n/var/lib/hardway/${STACK}/nfs 192.168.234.0/24(rw)\n# END hardway ${STACK}\n`,
      },
      `/etc/exports: # BEGIN hardway ${STACK}`,
    ],
    [
      "pod-route",
      { routes: [{ dst: "10.200.1.0/24", gateway: "192.168.234.21", dev: "eth0" }] },
      "10.200.1.0/24 via 192.168.234.21",
    ],
    ["state-dir", { stateDirs: [`/var/lib/hardway/${STACK}`] }, `/var/lib/hardway/${STACK}`],
  ];

  it.each(leftovers)("detects a leftover %s", (kind, extra, what) => {
    const state: HostState = {
      processes: [...clean.processes, ...(extra.processes ?? [])],
      links: [...clean.links, ...(extra.links ?? [])],
      routes: [...clean.routes, ...(extra.routes ?? [])],
      nftTables: [...clean.nftTables, ...(extra.nftTables ?? [])],
      iptablesRules: [...clean.iptablesRules, ...(extra.iptablesRules ?? [])],
      exportsText: clean.exportsText + (extra.exportsText ?? ""),
      sharedDnsmasqConf: clean.sharedDnsmasqConf + (extra.sharedDnsmasqConf ?? ""),
      stateDirs: [...clean.stateDirs, ...(extra.stateDirs ?? [])],
    };
    expect(findLeaks(state, target)).toEqual([{ kind, what }]);
  });

  it("still finds what the stack name alone identifies when the nodes are unknown", () => {
    const state: HostState = {
      ...clean,
      links: [{ ifname: bridgeName(STACK) }, { ifname: tapName(STACK, "control0") }],
      stateDirs: [`/var/lib/hardway/${STACK}`],
    };
    expect(findLeaks(state, { stack: STACK, nodes: {} }).map((l) => l.kind)).toEqual([
      "bridge",
      "tap",
      "state-dir",
    ]);
  });
});

describe("readHostState", () => {
  const answers: Record<string, string> = {
    ps: `    1 /sbin/init\n  900 qemu-system-aarch64 -name ${STACK}-control0 -pidfile /var/lib/hardway/${STACK}/vms/control0/qemu.pid\n`,
    sh: `${STACK}\n${OTHER}\n`,
    ip: "",
    nft: JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.9" } },
        { table: { family: "ip", name: natTableName(STACK), handle: 3 } },
      ],
    }),
    iptables: `-P FORWARD DROP\n-A FORWARD -m comment --comment hardway-${bridgeName(STACK)} -j ACCEPT\n`,
    netstat:
      "Routing tables\n\nInternet:\nDestination        Gateway            Flags               Netif Expire\n" +
      "default            192.168.1.1        UGScg                 en0\n" +
      "10.200.2/24        192.168.234.21     UGSc           bridge100\n",
  };
  const calls: string[] = [];
  const run = (program: string, args: readonly string[]): Promise<CommandResult> => {
    calls.push([program, ...args].join(" "));
    if (program === "ip") {
      const json =
        args[1] === "-d"
          ? [{ ifname: bridgeName(STACK), linkinfo: { info_kind: "bridge" } }]
          : [{ dst: "10.200.0.0/24", gateway: "192.168.234.11", dev: bridgeName(STACK) }];
      return Promise.resolve({ code: 0, stdout: JSON.stringify(json), stderr: "" });
    }
    if (program === "sudo") {
      return Promise.reject(new Error("sudo must not be used as root"));
    }
    return Promise.resolve({ code: 0, stdout: answers[program] ?? "", stderr: "" });
  };
  const files: Record<string, string> = {
    "/etc/exports": `# BEGIN hardway ${STACK}\n# END hardway ${STACK}\n`,
    "/opt/homebrew/etc/dnsmasq.conf": `# BEGIN hardway ${STACK}\n# END hardway ${STACK}\n`,
  };

  it("reads every kind of leftover on Linux", async () => {
    const state = await readHostState({
      platform: "linux",
      run,
      isRoot: true,
      readFile: (file) => files[file] ?? "",
    });
    expect(findLeaks(state, target).map((l) => l.kind)).toEqual([
      "vm-process",
      "bridge",
      "nat-table",
      "nat-rule",
      "export-block",
      "pod-route",
      "state-dir",
    ]);
  });

  it("reads processes, routes, blocks and state dirs on macOS", async () => {
    const state = await readHostState({
      platform: "darwin",
      run,
      isRoot: true,
      readFile: (file) => files[file] ?? "",
    });
    expect(findLeaks(state, target).map((l) => l.kind)).toEqual([
      "vm-process",
      "export-block",
      "dnsmasq",
      "pod-route",
      "state-dir",
    ]);
  });

  it("uses sudo -n for root-only reads when not root, and fails loudly when a read fails", async () => {
    const asked: string[] = [];
    const denied = (program: string, args: readonly string[]): Promise<CommandResult> => {
      if (program === "sudo") {
        asked.push(args.slice(0, 2).join(" "));
        return Promise.resolve({ code: 1, stdout: "", stderr: "sudo: a password is required" });
      }
      return run(program, args);
    };
    await expect(
      readHostState({ platform: "linux", run: denied, isRoot: false, readFile: () => "" }),
    ).rejects.toThrow(/list-state-root \/var\/lib\/hardway failed: sudo: a password is required/);
    expect(asked).toEqual(["-n sh"]);
  });

  it("treats a tool that is not installed as holding nothing", async () => {
    const noNft = (program: string, args: readonly string[]): Promise<CommandResult> =>
      program === "nft" || program === "iptables"
        ? Promise.reject(new Error(`${program} is not installed or not on PATH`))
        : run(program, args);
    const state = await readHostState({
      platform: "linux",
      run: noNft,
      isRoot: true,
      readFile: () => "",
    });
    expect(state.nftTables).toEqual([]);
    expect(state.iptablesRules).toEqual([]);
  });
});

describe("parsers", () => {
  it("parses ps lines with their full command", () => {
    expect(parsePs("  12 /usr/bin/a -x y\n\n3 b\n")).toEqual([
      { pid: 12, command: "/usr/bin/a -x y" },
      { pid: 3, command: "b" },
    ]);
  });

  it("keeps only gateway routes from netstat", () => {
    expect(
      parseNetstatRoutes(
        "Destination Gateway Flags Netif\n10.200.2/24 192.168.234.21 UGSc bridge100\n127 127.0.0.1 UCS lo0\n",
      ),
    ).toEqual([
      { dst: "10.200.2/24", gateway: "192.168.234.21", dev: "bridge100" },
      { dst: "127", gateway: "127.0.0.1", dev: "lo0" },
    ]);
  });
});
