/**
 * Periodic `node.heartbeat` events: capacity, launchers, datasets, machine health and every run the node
 * holds (active, waiting for a slot, or ended but not yet confirmed), so the orchestrator can tell a
 * run the node dropped from one whose report is merely late.
 */
import fs from "node:fs/promises";
import os from "node:os";
import { WIRE_VERSION, type DatasetInfo, type HeartbeatEvent, type Health, type LauncherIsolation } from "../messaging/contracts.js";
import { toError } from "../shared/index.js";
import type { RunRef } from "./events.js";
import type { AgentLogger } from "./log.js";

/** Reported in every heartbeat; bump with the package version. */
export const AGENT_VERSION = "0.1.0";

export interface HeartbeatSettings {
  nodeId: string;
  capacity: number;
  launchers: string[];
  /** The same launchers with the isolation each gives. */
  launcherDetails: { name: string; isolation: LauncherIsolation }[];
  /** The node's datasets: names, descriptions and labels, never paths. */
  datasets: DatasetInfo[];
  sandboxDir: string;
  intervalMs: number;
}

/** Every run this node holds, as a heartbeat reports it. */
export interface RunHoldings {
  /** Runs being executed (journaled as accepted, not finished). */
  activeRuns: RunRef[];
  /** Dispatches delivered and held un-acked until a slot frees. */
  waitingRuns: RunRef[];
  /** Runs that ended here whose terminal report the broker has not confirmed yet. */
  unreportedRuns: RunRef[];
}

export interface HeartbeatDeps {
  send: (event: HeartbeatEvent) => void;
  holdings: () => RunHoldings;
  log: AgentLogger;
}

/** Most runs of each kind one heartbeat lists (the contract's cap). */
const MAX_LISTED = 10_000;

/** Sends one heartbeat at once and then one every `intervalMs`. */
export function createHeartbeat(settings: HeartbeatSettings, deps: HeartbeatDeps): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;

  async function beat(): Promise<void> {
    try {
      const health = await readHealth(settings.sandboxDir);
      if (stopped) return;
      deps.send({
        type: "node.heartbeat",
        v: WIRE_VERSION,
        nodeId: settings.nodeId,
        at: new Date().toISOString(),
        capacity: settings.capacity,
        launchers: settings.launchers,
        launcherDetails: settings.launcherDetails,
        datasets: settings.datasets,
        health,
        ...listed(deps.holdings()),
      });
    } catch (err) {
      deps.log.warn(`heartbeat: ${toError(err).message}`);
    }
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => void beat().finally(schedule), settings.intervalMs);
  }

  void beat().finally(schedule);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}

function listed(holdings: RunHoldings): Pick<HeartbeatEvent, "activeRuns" | "waitingRuns" | "unreportedRuns"> {
  return {
    activeRuns: holdings.activeRuns.slice(0, MAX_LISTED),
    waitingRuns: holdings.waitingRuns.slice(0, MAX_LISTED),
    unreportedRuns: holdings.unreportedRuns.slice(0, MAX_LISTED),
  };
}

/** Health figures of this machine; `diskFreeBytes` is null when the sandbox's file system cannot be read. */
export async function readHealth(sandboxDir: string): Promise<Health> {
  let diskFreeBytes: number | null = null;
  try {
    const stat = await fs.statfs(sandboxDir);
    diskFreeBytes = stat.bavail * stat.bsize;
  } catch {
    diskFreeBytes = null;
  }
  return {
    cpus: os.cpus().length,
    loadAvg1: Math.max(0, os.loadavg()[0] ?? 0),
    memoryTotalBytes: os.totalmem(),
    memoryFreeBytes: os.freemem(),
    diskFreeBytes,
    gpus: 0,
    agentVersion: AGENT_VERSION,
  };
}
