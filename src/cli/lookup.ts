/** Commands that take several kinds of id (a run or a task, a run or an artifact) try each kind in turn. */
import { CliError } from "./errors.js";

/**
 * The answer of the first lookup that finds `id`: a NOT_FOUND moves on to the next kind, any
 * other error ends it. Throws NOT_FOUND naming every kind tried when none finds it.
 */
export async function firstFound<T>(id: string, lookups: [kind: string, lookup: () => Promise<T>][]): Promise<T> {
  for (const [, lookup] of lookups) {
    try {
      return await lookup();
    } catch (err) {
      if (!(err instanceof CliError) || err.code !== "NOT_FOUND") throw err;
    }
  }
  throw new CliError(`no ${lookups.map(([kind]) => kind).join(" or ")} ${JSON.stringify(id)} that you may see`, "NOT_FOUND");
}
