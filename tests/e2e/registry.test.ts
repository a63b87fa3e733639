import { parse } from "yaml";
import { imagesNotPulled, manifestRequests, registryConfig } from "./registry";

/** Lines of distribution v3.1.2's access log, as it wrote them for crane, curl and a node. */
const ACCESS_LOG = `time="2026-12-04T09:22:45.024875273Z" level=info msg="listening on [::]:5000" go.version=go1.26.8
127.0.0.1 - - [04/Dec/2026:09:23:02 +0000] "PUT /v2/metallb/speaker/manifests/v0.15.3 HTTP/1.1" 201 0 "" "crane/v0.22.1 go-containerregistry/v0.22.1"
127.0.0.1 - - [04/Dec/2026:09:23:02 +0000] "HEAD /v2/metallb/speaker/manifests/v0.15.3?ns=quay.io HTTP/1.1" 200 0 "" "curl/7.88.1"
192.168.234.22 - - [04/Dec/2026:09:40:11 +0000] "HEAD /v2/coredns/coredns/manifests/v1.14.6?ns=registry.k8s.io HTTP/1.1" 200 0 "" "containerd/v2.2.1"
192.168.234.22 - - [04/Dec/2026:09:40:11 +0000] "GET /v2/coredns/coredns/manifests/sha256:e889044b0d4a3959f257c88f9b9341c2e7a5fb62bc5c2422aa6741fd85b1fd8a?ns=registry.k8s.io HTTP/1.1" 200 405 "" "containerd/v2.2.1"
192.168.234.22 - - [04/Dec/2026:09:40:12 +0000] "GET /v2/metallb/controller/manifests/v0.15.3 HTTP/1.1" 200 405 "" "containerd/v2.2.1"
192.168.234.22 - - [04/Dec/2026:09:40:12 +0000] "HEAD /v2/metallb/speaker/manifests/v0.15.3?ns=quay.io HTTP/1.1" 404 101 "" "containerd/v2.2.1"
`;

describe("the registry's access log", () => {
  it("reads each manifest request: client, method, repository, reference, ns and status", () => {
    const requests = manifestRequests(ACCESS_LOG);
    expect(requests).toHaveLength(6);
    expect(requests[0]).toEqual({
      client: "127.0.0.1",
      method: "PUT",
      repository: "metallb/speaker",
      reference: "v0.15.3",
      status: 201,
    });
    expect(requests[2]).toEqual({
      client: "192.168.234.22",
      method: "HEAD",
      repository: "coredns/coredns",
      reference: "v1.14.6",
      ns: "registry.k8s.io",
      status: 200,
    });
  });

  it("counts an image pulled only when a node got its tag as a mirror of the image's registry", () => {
    const requests = manifestRequests(ACCESS_LOG);
    expect(
      imagesNotPulled(requests, [
        "registry.k8s.io/coredns/coredns:v1.14.6",
        // Asked without ns: not as a mirror.
        "quay.io/metallb/controller:v0.15.3",
        // Asked by a node but not found; the 200 came from loopback (the push's own check).
        "quay.io/metallb/speaker:v0.15.3",
      ]),
    ).toEqual(["quay.io/metallb/controller:v0.15.3", "quay.io/metallb/speaker:v0.15.3"]);
  });
});

describe("the registry's configuration", () => {
  it("stores on the filesystem, listens on every address and logs each request", () => {
    expect(parse(registryConfig("/run/registry", 5000))).toEqual({
      version: 0.1,
      log: { level: "info", formatter: "text", accesslog: { disabled: false } },
      storage: { filesystem: { rootdirectory: "/run/registry" } },
      http: { addr: ":5000" },
    });
  });
});
