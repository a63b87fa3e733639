/**
 * The only place the VM layer looks at the machine it runs on. Everything it learns is handed to
 * the pure functions in qemu.ts.
 */
import * as fs from "node:fs";
import { AcceleratorFacts } from "./qemu";

export interface VmHostFacts extends AcceleratorFacts {
  /** `brew --prefix`, without running brew: Homebrew's own variable, else its default place. */
  readonly homebrewPrefix: string;
}

function kvmUsable(): boolean {
  try {
    fs.accessSync("/dev/kvm", fs.constants.R_OK | fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function probeVmHost(): VmHostFacts {
  return {
    hostOs: process.platform,
    hostCpu: process.arch,
    kvmUsable: process.platform === "linux" && kvmUsable(),
    homebrewPrefix:
      process.env.HOMEBREW_PREFIX ?? (process.arch === "arm64" ? "/opt/homebrew" : "/usr/local"),
  };
}
