/**
 * CPU time and peak memory of each run's process tree, by sampling `/proc` (one scan per tick for
 * all runs). Where `/proc` is missing every figure stays zero.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";

export interface TreeUsage {
  cpuUserMs: number;
  cpuSystemMs: number;
  peakRssBytes: number;
}

export interface TrackedTree {
  /**
   * Call synchronously when the main process has exited (before any timer can run): takes the
   * delta of the agent's own child CPU, which now holds the reaped child's whole CPU time.
   */
  exited(): void;
  /** Resolves once the scan in flight when `exited()` was called, if any (it may have read the tree running), has recorded its figures. */
  scanned(): Promise<void>;
  /** Stops tracking and returns the tree's figures. */
  finish(): TreeUsage;
}

/**
 * The processes of one run: those of a process group, or a process and all its descendants (a run
 * in a PID namespace, whose processes may start sessions and groups of their own).
 */
export type TreeSelector = { pgid: number } | { descendantsOf: number };

export interface ProcessTreeSampler {
  /** Starts following every process `tree` selects. */
  track(tree: TreeSelector): TrackedTree;
  stop(): void;
}

interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  /** utime + cutime, in clock ticks. */
  userTicks: number;
  /** stime + cstime, in clock ticks. */
  systemTicks: number;
  startTicks: number;
  rssPages: number;
}

interface Tracked extends TreeUsage {
  tree: TreeSelector;
}

const PAGE_SIZE_BYTES = 4096;
let clockTicksPerSecond: number | undefined;

/** `getconf CLK_TCK`, read once; 100 when it cannot be read. */
export function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      const value = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8", timeout: 2_000 }).trim());
      clockTicksPerSecond = Number.isFinite(value) && value > 0 ? value : 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

function ticksToMs(ticks: number): number {
  return Math.round((ticks * 1000) / clockTicks());
}

/** Parses `/proc/<pid>/stat`; the command name may hold spaces and parentheses, so fields start after the last `)`. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const f = text.slice(close + 2).split(" ");
  const n = (fieldNumber: number) => Number(f[fieldNumber - 3]);
  const stat = { pid: Number(text.slice(0, text.indexOf(" "))), ppid: n(4), pgrp: n(5), userTicks: n(14) + n(16), systemTicks: n(15) + n(17), startTicks: n(22), rssPages: n(24) };
  return Object.values(stat).every(Number.isFinite) ? stat : null;
}

/** Start time of a process in clock ticks since boot (to tell a reused pid), or null. */
export function readStartTicks(pid: number): number | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"))?.startTicks ?? null;
  } catch {
    return null;
  }
}

/** CPU of the agent's reaped children (cutime, cstime) in ticks, or null without `/proc`. */
function readSelfChildrenTicks(): { user: number; system: number } | null {
  try {
    const f = readFileSync("/proc/self/stat", "utf8");
    const close = f.lastIndexOf(")");
    const fields = f.slice(close + 2).split(" ");
    return { user: Number(fields[16 - 3]), system: Number(fields[17 - 3]) };
  } catch {
    return null;
  }
}

/** Creates the shared sampler; scans `/proc` every `intervalMs` while at least one tree is tracked. */
export function createProcessTreeSampler(options: { intervalMs?: number } = {}): ProcessTreeSampler {
  const intervalMs = options.intervalMs ?? 100;
  const tracked = new Set<Tracked>();
  let selfTicks = readSelfChildrenTicks();
  let scanning: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;

  function scan(): Promise<void> {
    if (scanning || tracked.size === 0) return scanning ?? Promise.resolve();
    scanning = scanOnce().finally(() => {
      scanning = null;
    });
    return scanning;
  }

  async function scanOnce(): Promise<void> {
    selfTicks = readSelfChildrenTicks();
    const stats = await readAllStats();
    for (const t of tracked) {
      const sum = sumOf(selectTree(stats, t.tree));
      if (!sum) continue;
      // Reaped children move into their parent's cutime, so the live sum only grows; keep its maximum.
      t.cpuUserMs = Math.max(t.cpuUserMs, ticksToMs(sum.userTicks));
      t.cpuSystemMs = Math.max(t.cpuSystemMs, ticksToMs(sum.systemTicks));
      const leader = "pgid" in t.tree ? t.tree.pgid : t.tree.descendantsOf;
      t.peakRssBytes = Math.max(t.peakRssBytes, sum.rssPages * PAGE_SIZE_BYTES, await leaderPeakBytes(leader));
    }
  }

  function ensureTimer(): void {
    if (timer || tracked.size === 0) return;
    timer = setInterval(() => void scan().catch(() => undefined), intervalMs);
    timer.unref();
  }

  return {
    track(tree) {
      const t: Tracked = { tree, cpuUserMs: 0, cpuSystemMs: 0, peakRssBytes: 0 };
      tracked.add(t);
      selfTicks ??= readSelfChildrenTicks();
      ensureTimer();
      // Short runs end before the first interval: sample right after the start as well, unless the
      // run has ended by then (a scan reads every /proc/<pid>/stat and would hold up its report).
      let ended = false;
      const early = [10, 40].map((delayMs) => setTimeout(() => void (ended ? undefined : scan().catch(() => undefined)), delayMs).unref());
      let reaped = { cpuUserMs: 0, cpuSystemMs: 0 };
      /** The scan in flight when the run's main process exited: it may have read the tree while it ran. */
      let scanAtExit: Promise<void> | null = null;
      return {
        exited() {
          ended = true;
          scanAtExit = scanning;
          for (const timer of early) clearTimeout(timer);
          // Another run's child reaped in the same interval would inflate this delta; the sampled
          // sum stays the floor either way.
          const now = readSelfChildrenTicks();
          if (now && selfTicks) reaped = { cpuUserMs: ticksToMs(now.user - selfTicks.user), cpuSystemMs: ticksToMs(now.system - selfTicks.system) };
          selfTicks = now;
        },
        scanned: () => (scanAtExit ?? Promise.resolve()).catch(() => undefined),
        finish() {
          tracked.delete(t);
          if (tracked.size === 0 && timer) {
            clearInterval(timer);
            timer = null;
          }
          return {
            cpuUserMs: Math.max(t.cpuUserMs, reaped.cpuUserMs),
            cpuSystemMs: Math.max(t.cpuSystemMs, reaped.cpuSystemMs),
            peakRssBytes: t.peakRssBytes,
          };
        },
      };
    },
    stop() {
      tracked.clear();
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}

/** Every process's stat, or none without `/proc`. */
async function readAllStats(): Promise<ProcStat[]> {
  let entries: string[];
  try {
    entries = await fs.readdir("/proc");
  } catch {
    return [];
  }
  const stats = await Promise.all(
    entries.filter((name) => /^\d+$/.test(name)).map((pid) => fs.readFile(`/proc/${pid}/stat`, "utf8").then(parseProcStat, () => null)),
  );
  return stats.filter((stat): stat is ProcStat => stat !== null);
}

/** The processes of `tree` among `stats`. */
function selectTree(stats: readonly ProcStat[], tree: TreeSelector): ProcStat[] {
  if ("pgid" in tree) return stats.filter((s) => s.pgrp === tree.pgid);
  const children = new Map<number, ProcStat[]>();
  for (const s of stats) {
    const siblings = children.get(s.ppid);
    if (siblings) siblings.push(s);
    else children.set(s.ppid, [s]);
  }
  const selected = stats.filter((s) => s.pid === tree.descendantsOf);
  for (let i = 0; i < selected.length; i += 1) selected.push(...(children.get(selected[i]!.pid) ?? []));
  return selected;
}

/** The pids of a process's descendants (not itself), deepest last; empty without `/proc`. */
export async function descendantPids(pid: number): Promise<{ pid: number; depth: number }[]> {
  const tree = selectTree(await readAllStats(), { descendantsOf: pid });
  const depth = new Map<number, number>([[pid, 0]]);
  const found: { pid: number; depth: number }[] = [];
  for (const s of tree) {
    if (s.pid === pid) continue;
    const d = (depth.get(s.ppid) ?? 0) + 1;
    depth.set(s.pid, d);
    found.push({ pid: s.pid, depth: d });
  }
  return found;
}

function sumOf(stats: readonly ProcStat[]): { userTicks: number; systemTicks: number; rssPages: number } | null {
  if (stats.length === 0) return null;
  const sum = { userTicks: 0, systemTicks: 0, rssPages: 0 };
  for (const stat of stats) {
    sum.userTicks += stat.userTicks;
    sum.systemTicks += stat.systemTicks;
    sum.rssPages += stat.rssPages;
  }
  return sum;
}

/** The group leader's own high-water mark (VmHWM), which catches peaks between two scans. */
async function leaderPeakBytes(pid: number): Promise<number> {
  try {
    const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
