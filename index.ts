/**
 * hardway: a highly available Kubernetes cluster built the hard way on QEMU VMs.
 * Read config once, derive the address plan, then build the cluster layer by layer.
 */
import * as pulumi from "@pulumi/pulumi";
import { nodesOutput, sshConfigSnippet } from "./components/cluster/outputs";
import { loadConfig } from "./components/config/load";
import { addressPlan } from "./components/network/addressPlan";
import { Pki } from "./components/pki/pki";

const stack = pulumi.getStack();
const config = loadConfig();
const plan = addressPlan(config);
const clusterName = `hardway-${stack}`;

const pki = new Pki("pki", {
  plan,
  clusterName,
  caValidityHours: config.pki.caValidityHours,
  validityHours: config.pki.validityHours,
  earlyRenewalHours: config.pki.earlyRenewalHours,
});

export const apiServer = plan.apiServerUrl;
export const nodes = nodesOutput(plan);
export const kubeconfig = pki.kubeconfigs.admin;
export const caCertPem = pki.cas["kubernetes-ca"].certPem;
export const sshPrivateKey = pki.ssh.privateKey;
export const sshPublicKey = pki.ssh.publicKey;
export const sshConfig = sshConfigSnippet(plan, `~/.ssh/${clusterName}`);
export const certificateExpiry = pki.expiry;
