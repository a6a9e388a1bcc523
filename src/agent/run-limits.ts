/**
 * What launchers that enforce limits share: reading a wrapper's exit status, watching the run's
 * directory against the disk limit, and telling which limit ended a run (with the setting that gave it).
 */
import { constants as osConstants } from "node:os";
import { limitSource, type LimitHit, type RunSpec } from "./launcher.js";
import type { ProcessExit } from "./process-launcher.js";
import { measureOutputBytes } from "./sandbox.js";

/** How often the run directory's size is checked against the disk limit. */
const DISK_CHECK_INTERVAL_MS = 1_000;
const MIB = 1024 * 1024;

/** A wrapper (bwrap, podman, docker) exits with 128 + N when the tool was killed by signal N. */
export function fromWrapperStatus(exit: ProcessExit): ProcessExit {
  if (exit.code === null || exit.code <= 128 || exit.code >= 128 + 65) return exit;
  const name = Object.entries(osConstants.signals).find(([, number]) => number === exit.code! - 128)?.[0];
  return name ? { code: exit.code, signal: name as NodeJS.Signals } : exit;
}

export interface DiskWatch {
  /** The disk limit, once the run's directory held more than it. */
  hit(): LimitHit | null;
  stop(): void;
}

/** Checks the run's directory every second and calls `onHit` once when it holds more than the disk limit. */
export function watchDisk(spec: RunSpec, onHit: () => void): DiskWatch {
  const limitBytes = spec.limits.diskMiB === null ? null : spec.limits.diskMiB * MIB;
  let hit: LimitHit | null = null;
  let stopped = false;
  const timer =
    limitBytes === null
      ? undefined
      : setInterval(() => {
          void measureOutputBytes(spec.runDir).then((bytes) => {
            if (stopped || hit || bytes <= limitBytes) return;
            hit = { kind: "disk", message: `${diskMessage(spec)}: its directory holds ${bytes} bytes` };
            onHit();
          });
        }, DISK_CHECK_INTERVAL_MS);
  return {
    hit: () => hit,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

function diskMessage(spec: RunSpec): string {
  return `reached the disk limit of ${spec.limits.diskMiB} MiB (${limitSource(spec.limits, "diskMiB")})`;
}

/** The limit that ended the run: memory when `oomKilled`, CPU time on SIGXCPU, disk when it failed with its directory full. */
export async function limitHitOf(exit: ProcessExit, spec: RunSpec, oomKilled: boolean): Promise<LimitHit | null> {
  const { memoryMiB, cpuSeconds, diskMiB } = spec.limits;
  if (memoryMiB !== null && oomKilled) return { kind: "memory", message: `exceeded the memory limit of ${memoryMiB} MiB (${limitSource(spec.limits, "memoryMiB")})` };
  if (exit.signal === "SIGXCPU" && cpuSeconds !== null) return { kind: "cpuTime", message: `exceeded the CPU time limit of ${cpuSeconds} s (${limitSource(spec.limits, "cpuSeconds")})` };
  if (diskMiB === null || (exit.code === 0 && exit.signal === null)) return null;
  // A file that reached RLIMIT_FSIZE stops at exactly the limit; a tool that ignores SIGXFSZ then fails with EFBIG.
  if (exit.signal === "SIGXFSZ" || (await measureOutputBytes(spec.runDir)) >= diskMiB * MIB) return { kind: "disk", message: diskMessage(spec) };
  return null;
}
