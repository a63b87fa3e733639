/**
 * The Kubernetes provider every object of the cluster goes through, and the options each such
 * object takes. Shared by ClusterAccess and ClusterServices.
 *
 * Preview on a brand-new stack: the kubeconfig is joined with `apiReady`, which is unknown until
 * the API health step has run. The Pulumi engine does not configure a provider whose inputs are
 * unknown during a preview and answers Check/Diff/Create for its resources from their inputs, so
 * nothing tries to reach a cluster that is not there.
 *
 * Later updates: the provider is named by `clusterIdentifier`, so a new kubeconfig (a renewed
 * admin certificate) updates it instead of replacing it and every object with it.
 *
 * Destroy: every object lives in etcd, so when the etcd step goes (`pulumi destroy`, or a
 * `stopAfter` below the control plane) they go with it (`deletedWith`) and nothing asks a cluster
 * that may already be stopped. Only a change that keeps etcd deletes objects one by one, through
 * an API that answers. `deleteUnreachable` stays off: with the VMs stopped a `pulumi refresh`
 * would drop every object from the state although it still exists.
 *
 * Request timeout: when the provider is configured it reads the API server's OpenAPI document
 * (/openapi/v2), which the API server builds on the first request. The client's default timeout
 * for it is 32 s; a software-emulated control node can take longer, and then the provider marks
 * the cluster unreachable for the whole run ("unable to load schema information").
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface ClusterProviderArgs {
  /** The admin kubeconfig. It reaches the provider as a secret whether or not it is one here. */
  readonly kubeconfig: pulumi.Input<string>;
  /**
   * The API health step (ApiLoadBalancer.health) as a resource, or one of its outputs. An Output
   * or a custom resource also keeps the kubeconfig unknown during the first preview; a component
   * resource only orders the provider after it.
   */
  readonly apiReady: pulumi.Input<unknown>;
  /** Names the cluster for the provider (KubernetesClusterArgs.clusterName). */
  readonly clusterName: string;
  /** The etcd step (Etcd.members): every Kubernetes object is deleted with it. */
  readonly clusterData: pulumi.Resource;
  /**
   * Seconds any one request to the API may take (the provider's `kubeClientSettings.timeout`).
   * On emulated control nodes the program gives it as long as the API servers give a request
   * (EMULATED_API_REQUEST_TIMEOUT_SECONDS). A watch is cut after this long too, and the
   * provider's and Helm's waits simply start it again.
   * @default the client's own (32 s for discovery and the OpenAPI document, none otherwise)
   */
  readonly requestTimeoutSeconds?: number;
}

/** The provider, ordered after the API health step. */
export function clusterProvider(
  name: string,
  args: ClusterProviderArgs,
  parent: pulumi.Resource,
): k8s.Provider {
  const apiReadyResource = pulumi.Resource.isInstance(args.apiReady) ? args.apiReady : undefined;
  const gate: pulumi.Input<unknown> =
    apiReadyResource === undefined
      ? args.apiReady
      : pulumi.CustomResource.isInstance(apiReadyResource)
        ? apiReadyResource.id
        : apiReadyResource.urn;
  return new k8s.Provider(
    name,
    {
      kubeconfig: pulumi
        .all([pulumi.secret(args.kubeconfig), gate])
        .apply(([kubeconfig]) => kubeconfig),
      // Only a new cluster name replaces the provider (and so every object through it).
      clusterIdentifier: args.clusterName,
      // Patch resources (the node labels) exist only under server-side apply.
      enableServerSideApply: true,
      kubeClientSettings:
        args.requestTimeoutSeconds === undefined
          ? undefined
          : { timeout: args.requestTimeoutSeconds },
    },
    { parent, dependsOn: apiReadyResource ? [apiReadyResource] : [] },
  );
}

/** Options of every Kubernetes object: through the provider, deleted with etcd. */
export function objectOptions(
  provider: k8s.Provider,
  parent: pulumi.Resource,
  clusterData: pulumi.Resource,
  dependsOn: pulumi.Resource[] = [],
): pulumi.CustomResourceOptions {
  return { provider, parent, dependsOn, deletedWith: clusterData };
}
