/** The one after-commit hook of an instance: every writer calls it once its transaction committed. */
import type { AfterCommit, ChangeSet } from "./kernel/index.js";

export interface AfterCommitDeps {
  /** Delivers the changes to this instance's subscribers and to the other instances. */
  announce(changes: ChangeSet): void;
  /** Wakes the outbox relay (the changes wrote messages). */
  wakeRelay(): void;
  /** Wakes the scheduler (runs became ready or slots freed). */
  wakeScheduler(): void;
  /** Sees every committed change set (metrics); must not throw. @default none */
  observe?(changes: ChangeSet): void;
  /** Told how many runs a submission created (the tables' statistics); must not throw. @default none */
  runsCreated?(count: number): void;
}

/** Announces what committed and wakes the loops that have new work, so nothing waits for a poll. */
export function createAfterCommit(deps: AfterCommitDeps): AfterCommit {
  return (changes) => {
    deps.observe?.(changes);
    if (changes.runsCreated > 0) deps.runsCreated?.(changes.runsCreated);
    deps.announce(changes);
    if (changes.outboxWritten) deps.wakeRelay();
    if (changes.schedule) deps.wakeScheduler();
  };
}
