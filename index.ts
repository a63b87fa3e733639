/**
 * hardway: a highly available Kubernetes cluster built the hard way on QEMU VMs.
 * Read config once, derive the address plan, then build the cluster chapter by chapter, up to
 * the stage `hardway:stopAfter` names.
 */
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { ClusterAccess } from "./components/addons/clusterAccess";
import { ClusterServices } from "./components/addons/clusterServices";
import { KubernetesCluster } from "./components/cluster/kubernetesCluster";
import { nodesOutput, sshConfigSnippet } from "./components/cluster/outputs";
import { loadConfig } from "./components/config/load";
import { reached } from "./components/config/schema";
import { HostNetwork } from "./components/host/hostNetwork";
import { EMULATED_API_REQUEST_TIMEOUT_SECONDS } from "./components/kubernetes/controlPlane";
import { registryMirrors } from "./components/kubernetes/runtime";
import { VmnetDnsRebind } from "./components/host/vmnetDnsRebind";
import { addressPlan } from "./components/network/addressPlan";
import { Pki } from "./components/pki/pki";
import { BaseImage } from "./components/vm/baseImage";
import { probeVmHost } from "./components/vm/hostProbe";
import { directKernel } from "./components/vm/qemu";
import { VirtualMachine } from "./components/vm/virtualMachine";

const stack = pulumi.getStack();
const vmHost = probeVmHost();
const { config, accelerator } = loadConfig(vmHost);
const plan = addressPlan(config);
const clusterName = `hardway-${stack}`;

// Chapter 4: certificates, kubeconfigs, the encryption key and the SSH keys.
const pki = new Pki("pki", {
  plan,
  clusterName,
  caValidityHours: config.pki.caValidityHours,
  validityHours: config.pki.validityHours,
  earlyRenewalHours: config.pki.earlyRenewalHours,
});

// Chapters 2-3: the host network, the base image and one VM per node.
const hostNetwork = new HostNetwork("host", { plan, stack, platform: vmHost.hostOs });
const image = new BaseImage("image", {
  url: config.image.url,
  sha256: config.image.sha256,
  path: config.image.path,
  holder: clusterName,
});
const vms = plan.nodes.map(
  (node) =>
    new VirtualMachine(
      `vm-${node.name}`,
      {
        node,
        network: plan,
        stack,
        arch: config.arch,
        accelerator,
        size: config.vm[node.role],
        baseImage: image.path,
        kernel: directKernel(config.image),
        prebaked: config.image.prebaked,
        sshUser: config.image.user,
        attachment: hostNetwork.steps.vmNetwork,
        hostOs: vmHost.hostOs,
        homebrewPrefix: vmHost.homebrewPrefix,
        sshPublicKey: pki.ssh.publicKey,
        sshPrivateKey: pki.ssh.privateKey,
        hostKey: pki.hostKeys[node.name],
      },
      // The VM's NIC joins the bridge (or vmnet) the host network sets up.
      { dependsOn: [hostNetwork] },
    ),
);
if (hostNetwork.steps.platform === "darwin") {
  new VmnetDnsRebind("host-dns", { steps: hostNetwork.steps }, { dependsOn: vms });
}

// Chapters 5-6: etcd, the control plane, the API load balancer and the nodes.
const kubernetes = reached(config.stopAfter, "controlPlane")
  ? new KubernetesCluster("k8s", {
      config,
      plan,
      pki,
      clusterName,
      nodes: {
        connection: { user: config.image.user, privateKey: pki.ssh.privateKey },
        hosts: Object.fromEntries(
          vms.map((vm) => [vm.nodeName, { hostKey: vm.hostKey, instance: vm.instance }]),
        ),
        hostNetwork,
      },
      through: reached(config.stopAfter, "nodes") ? "nodes" : "controlPlane",
      registryMirrors: registryMirrors(config.registryMirrors, (file) =>
        fs.readFileSync(file, "utf8"),
      ),
      networkReady: hostNetwork,
      emulated: accelerator === "tcg",
    })
  : undefined;

// Chapter 5, through the API once it answers: the apiserver-to-kubelet and cluster-admins RBAC.
const access =
  kubernetes === undefined
    ? undefined
    : new ClusterAccess("access", {
        kubeconfig: pki.kubeconfigs.admin,
        apiReady: kubernetes.apiHealth,
        clusterName,
        clusterData: kubernetes.etcd.members,
        // The client waits as long as the API servers let a request run (the OpenAPI document).
        requestTimeoutSeconds:
          accelerator === "tcg" ? EMULATED_API_REQUEST_TIMEOUT_SECONDS : undefined,
      });

// Chapters 7-8: Cilium (optional), CoreDNS, MetalLB and NFS storage (as config says), through the API.
if (access && kubernetes?.kubelet !== undefined && reached(config.stopAfter, "services")) {
  new ClusterServices("services", {
    plan,
    cni: config.cni,
    services: config.services,
    charts: config.versions.charts,
    chartMirror: config.chartMirror,
    chartValues: config.chartValues,
    emulated: accelerator === "tcg",
    corednsVersion: config.versions.coredns,
    provider: access.provider,
    kubeconfig: pki.kubeconfigs.admin,
    clusterData: kubernetes.etcd.members,
    nfsPath: hostNetwork.exportDir,
    kubelets: kubernetes.kubelet.nodes,
  });
}

export const apiServer = plan.apiServerUrl;
export const nodes = nodesOutput(plan);
export const kubeconfig = pki.kubeconfigs.admin;
export const caCertPem = pki.cas["kubernetes-ca"].certPem;
export const sshPrivateKey = pki.ssh.privateKey;
export const sshConfig = pulumi
  .all(Object.fromEntries(plan.nodes.map((n) => [n.name, pki.hostKeys[n.name].publicKey])))
  .apply((hostKeys) =>
    sshConfigSnippet(plan, `~/.ssh/${clusterName}`, config.image.user, hostKeys, clusterName),
  );
export const certificateExpiry = pki.expiry;
