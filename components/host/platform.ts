/**
 * The host operating systems the program can build a cluster on. Pure.
 */
export const HOST_PLATFORMS = ["linux", "darwin"] as const;
export type HostPlatform = (typeof HOST_PLATFORMS)[number];

/** Narrows `process.platform` (passed in, never read here) or says which hosts are supported. */
export function hostPlatform(platform: string): HostPlatform {
  const known = HOST_PLATFORMS.find((p) => p === platform);
  if (known === undefined) {
    throw new Error(
      `host platform "${platform}" is not supported; hardway runs on ${HOST_PLATFORMS.join(" or ")}`,
    );
  }
  return known;
}
