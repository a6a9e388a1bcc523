/**
 * Start-up clean-up of what a previous agent process left in the journal and the log spool: runs
 * it was executing are killed and reported NODE_LOST (never executed again); their spooled log
 * lines, and those of any run whose lines the broker had not all confirmed, are sent again ahead of
 * the run's final state; terminal states it could not get confirmed are sent again.
 */
import { WIRE_VERSION } from "../messaging/contracts.js";
import { toError } from "../shared/index.js";
import { stateEvent, zeroUsage } from "./events.js";
import type { Journal, JournalRecord } from "./journal.js";
import { killProcessGroup, type Launcher } from "./launcher.js";
import type { AgentLogger } from "./log.js";
import { listLeftoverSpools, replaySpool, type LeftoverSpool } from "./log-replay.js";
import type { Outbox } from "./outbox.js";
import { reportTerminal } from "./report.js";
import { readStartTicks } from "./usage.js";

export interface RecoverySettings {
  nodeId: string;
  sandboxDir: string;
  /** Size of the `run.logs` batches replayed from the spool. */
  logBatchBytes: number;
}

/**
 * Handles every unfinished or unreported run of the journal and every leftover log spool; resolves
 * once the runs' final states are journaled. Spooled lines and final states are then queued in the
 * background (a run's lines before its final state), so a large spool does not hold up the start.
 */
export async function recoverPreviousRuns(
  journal: Journal,
  outbox: Outbox,
  settings: RecoverySettings,
  deps: { log: AgentLogger; launchers: ReadonlyMap<string, Launcher> },
): Promise<number> {
  const spools = await listLeftoverSpools(settings.sandboxDir).catch((err: unknown) => {
    deps.log.error(`${toError(err).message}: spooled log lines are not sent again`);
    return new Map<string, LeftoverSpool>();
  });
  const replay = (spool: LeftoverSpool) => replaySpool(spool, { nodeId: settings.nodeId, maxBatchBytes: settings.logBatchBytes }, { outbox, log: deps.log });
  let recovered = 0;
  for (const record of journal.records()) {
    const ref = { runId: record.runId, attempt: record.attempt };
    let terminal = record.terminal;
    if (record.reported) continue;
    let lost = false;
    if (!terminal) {
      if (!record.accepted) continue; // only a cancel that arrived before its dispatch
      const killed = record.pid !== null && killLeftoverGroup(record, deps.log);
      for (const launcher of deps.launchers.values()) await launcher.reclaim(ref.runId, ref.attempt);
      terminal = stateEvent(settings.nodeId, ref, "FAILED", {
        failureReason: "NODE_LOST",
        exitCode: null,
        message: "agent restarted while the run was active",
        usage: zeroUsage(),
      });
      deps.log.warn(`run ${ref.runId}#${ref.attempt}: was active when the previous agent stopped; reporting NODE_LOST${killed ? " (killed its leftover processes)" : ""}`);
      await journal.append({ event: "finished", ...ref, at: terminal.at, terminal });
      lost = true;
    }
    recovered += 1;
    const spool = spools.get(`${ref.runId}:${ref.attempt}`);
    spools.delete(`${ref.runId}:${ref.attempt}`);
    const finalState = terminal;
    void (async () => {
      if (spool) {
        const { lastSeq } = await replay(spool);
        // Numbered after the last spooled line, so the run's log says where it was cut.
        if (lost && lastSeq > 0) {
          const at = new Date().toISOString();
          const text = "the agent restarted while the run was active; its output after the last line above was not read";
          void outbox.send({ type: "run.logs", v: WIRE_VERSION, nodeId: settings.nodeId, ...ref, lines: [{ seq: lastSeq + 1, stream: "SYSTEM", at, text }] });
        }
      }
      await reportTerminal(finalState, { outbox, journal });
    })();
  }
  // Spools of runs already reported (the agent stopped before removing them): sent again, stored once.
  for (const spool of spools.values()) void replay(spool);
  return recovered;
}

/** SIGKILLs the run's process group unless its leader's pid now belongs to another process. */
function killLeftoverGroup(record: JournalRecord, log: AgentLogger): boolean {
  if (record.pid === null) return false;
  const current = readStartTicks(record.pid);
  // A live leader with another start time means the pid was reused; then the old group is gone,
  // since Linux never hands out a pid that is still a process group id.
  if (current !== null && record.startTicks !== null && current !== record.startTicks) return false;
  try {
    return killProcessGroup(record.pid, "SIGKILL");
  } catch (err) {
    log.warn(`run ${record.runId}#${record.attempt}: ${toError(err).message}`);
    return false;
  }
}
