/**
 * Start-up clean-up of what a previous agent process left in the journal: runs it was executing
 * are killed and reported NODE_LOST (never executed again); terminal states it could not get
 * confirmed are sent again.
 */
import { toError } from "../shared/index.js";
import { stateEvent, zeroUsage } from "./events.js";
import type { Journal, JournalRecord } from "./journal.js";
import { killProcessGroup, type Launcher } from "./launcher.js";
import type { AgentLogger } from "./log.js";
import type { Outbox } from "./outbox.js";
import { reportTerminal } from "./report.js";
import { readStartTicks } from "./usage.js";

/** Handles every unfinished or unreported run of the journal; resolves once they are journaled and queued. */
export async function recoverPreviousRuns(
  journal: Journal,
  outbox: Outbox,
  settings: { nodeId: string },
  deps: { log: AgentLogger; launchers: ReadonlyMap<string, Launcher> },
): Promise<number> {
  let recovered = 0;
  for (const record of journal.records()) {
    const ref = { runId: record.runId, attempt: record.attempt };
    let terminal = record.terminal;
    if (record.reported) continue;
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
    }
    recovered += 1;
    void reportTerminal(terminal, { outbox, journal });
  }
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
