/** The last step of a run on this node: its terminal state sent, then journaled as reported. */
import type { RunStateEvent } from "../messaging/contracts.js";
import type { Journal } from "./journal.js";
import type { Outbox } from "./outbox.js";

/**
 * Sends a run's terminal state (already journaled as `finished`) through the outbox and journals
 * the run `reported` once the broker confirmed it; never rejects. A `reported` entry that cannot
 * be written only means the state is sent again, under the same message id, on the next start.
 */
export async function reportTerminal(terminal: RunStateEvent, deps: { outbox: Outbox; journal: Journal }): Promise<void> {
  const sent = await deps.outbox.send(terminal);
  if (!sent) return;
  await deps.journal.append({ event: "reported", runId: terminal.runId, attempt: terminal.attempt, at: new Date().toISOString() }).catch(() => undefined);
}
