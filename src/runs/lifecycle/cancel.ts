/** Cancelling runs: a compare-and-set, so cancel and a finishing run cannot both win. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { json, query } from "../../db/sql.js";
import type { ChangeSet } from "../../kernel/index.js";
import { rowToRun, type RunRecord } from "../run.mapper.js";
import { settleRuns } from "./follow-ups.js";
import { enqueueCancel } from "./node-messages.js";
import { fromStates } from "./table.js";

/**
 * Cancels the given runs where they are not yet terminal, asks their nodes to stop the ones
 * already dispatched, and recomputes their tasks (and `alsoTaskIds`) and workflows.
 */
export async function cancelRuns(
  em: EntityManager,
  runIds: string[],
  reason: string,
  changes: ChangeSet,
  alsoTaskIds: Iterable<string> = [],
): Promise<RunRecord[]> {
  const rows =
    runIds.length === 0
      ? []
      : await query(
          em,
          `with target as (
             select id, state as previous from run
             where id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
               and state in (${fromStates("cancel")})
             for no key update
           )
           update run r set state = 'CANCELLED', finished_at = now(), message = ?
           from target where r.id = target.id and r.state in (${fromStates("cancel")})
           returning r.*, target.previous, (target.previous <> 'PENDING' and r.dispatched_at is not null) as on_node`,
          [json(runIds), reason],
        );
  const cancelled = rows.map((row) => {
    const { previous: _previous, on_node, ...rest } = row;
    return { run: rowToRun(rest), onNode: on_node === true };
  });
  // Only runs already handed to a node need a message; the others never leave the database.
  const dispatched = cancelled.filter((c) => c.onNode).map((c) => c.run);
  await enqueueCancel(em, dispatched.map((r) => ({ id: r.id, attempt: r.attempt, nodeId: r.nodeId })), reason, changes);
  const runs = cancelled.map((c) => c.run);
  changes.addRuns(runs);
  await settleRuns(em, runs, changes, alsoTaskIds);
  return runs;
}
