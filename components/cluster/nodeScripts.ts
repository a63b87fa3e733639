/**
 * NodeScripts: puts the scripts of assets/node on each VM once, under a directory named by
 * their content hash. Every step runs them from there, so a step's `delete` still finds the
 * exact scripts its `create` ran even after the checkout has moved on.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { remote, types } from "@pulumi/command";
import { NodeAddress } from "../network/addressPlan";
import { SSH_USER } from "./outputs";

export const NODE_ASSETS_DIR = path.resolve(__dirname, "../../assets/node");
export const NODE_SCRIPTS = ["install-files.sh", "node-step.sh", "etcd-health.sh"] as const;
export type NodeScript = (typeof NODE_SCRIPTS)[number];

/** The first 16 hex digits of the sha256 over the scripts' names and contents. */
export function scriptsHash(dir: string = NODE_ASSETS_DIR): string {
  const hash = crypto.createHash("sha256");
  for (const script of NODE_SCRIPTS) {
    hash
      .update(`${script}\0`)
      .update(fs.readFileSync(path.join(dir, script)))
      .update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

/** Where the SSH user keeps hardway's scripts and staged release files on a VM. */
export function remoteHome(user: string): string {
  return `/home/${user}`;
}

/** Everything a step needs to run on one VM. */
export interface NodeTarget {
  readonly node: NodeAddress;
  readonly connection: types.input.remote.ConnectionArgs;
  readonly user: string;
  /** Directory on the VM holding NODE_SCRIPTS. */
  readonly scriptsDir: string;
  /** What a step must wait for before it can run anything on the VM. */
  readonly ready: readonly pulumi.Resource[];
}

export interface NodeScriptsArgs {
  /** The VMs that run steps. */
  readonly nodes: readonly NodeAddress[];
  /** Secret: the SSH key every VM authorises (Pki.ssh.privateKey). */
  readonly privateKey: pulumi.Input<string>;
  /** Per node name, the resource that completes once the VM answers SSH (its VirtualMachine). */
  readonly vmReady: Readonly<Record<string, pulumi.Resource>>;
  /**
   * The SSH user of the cloud image.
   * @default SSH_USER ("ubuntu")
   */
  readonly user?: string;
}

export class NodeScripts extends pulumi.ComponentResource {
  readonly hash: string;
  private readonly targets: Map<string, NodeTarget>;

  constructor(name: string, args: NodeScriptsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:NodeScripts", name, {}, opts);
    const user = args.user ?? SSH_USER;
    this.hash = scriptsHash();
    const scriptsDir = `${remoteHome(user)}/.local/share/hardway/node/${this.hash}`;
    this.targets = new Map();
    for (const node of args.nodes) {
      const vm = args.vmReady[node.name];
      if (vm === undefined) {
        throw new pulumi.ResourceError(
          `vmReady has no entry for ${node.name}; pass the VirtualMachine of every node in nodes`,
          this,
        );
      }
      const connection: types.input.remote.ConnectionArgs = {
        host: node.ip,
        user,
        privateKey: args.privateKey,
      };
      const copies = NODE_SCRIPTS.map(
        (script) =>
          new remote.CopyToRemote(
            `${name}-${node.name}-${script.replace(/\.sh$/, "")}`,
            {
              connection,
              source: new pulumi.asset.FileAsset(path.join(NODE_ASSETS_DIR, script)),
              remotePath: `${scriptsDir}/${script}`,
              triggers: [this.hash],
            },
            { parent: this, dependsOn: [vm] },
          ),
      );
      this.targets.set(node.name, { node, connection, user, scriptsDir, ready: copies });
    }
    this.registerOutputs({ hash: this.hash });
  }

  /** The target for a node this component was given. */
  target(node: NodeAddress): NodeTarget {
    const found = this.targets.get(node.name);
    if (found === undefined) {
      throw new pulumi.ResourceError(
        `NodeScripts was not given node ${node.name}; add it to its nodes`,
        this,
      );
    }
    return found;
  }
}
