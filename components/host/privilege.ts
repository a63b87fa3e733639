/**
 * Whether a host command needs `sudo`, and how to say so when sudo cannot run without asking.
 * Pure: the caller passes its uid. Pulumi shows no terminal to a password prompt, so sudo always
 * runs non-interactively (`-n`) and a missing credential is reported instead of hanging.
 */

/** The message every privileged step gives when sudo would have prompted. */
export const SUDO_HINT =
  "this step needs root: run `sudo -v` in this terminal first (it caches your password), then run pulumi again";

/** The argv to run: unchanged for root or for unprivileged steps, else behind `sudo -n`. */
export function privilegedArgv(
  argv: readonly string[],
  options: { readonly asRoot: boolean; readonly uid: number },
): string[] {
  return options.asRoot && options.uid !== 0 ? ["sudo", "-n", "--", ...argv] : [...argv];
}

/** True when `sudo -n` refused because it would have asked for a password. */
export function sudoWouldPrompt(stderr: string): boolean {
  return /sudo: (a password is required|a terminal is required)/.test(stderr);
}
