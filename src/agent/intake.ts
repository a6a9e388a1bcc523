/**
 * Decides what happens to each delivered node message: validation, duplicates, the tool allow-list
 * and pinned digests, the datasets it names, capacity (a delivery waits un-acked for a free slot), acceptance (journal,
 * then ack) and cancels.
 */
import {
  MAX_NODE_MESSAGE_BYTES,
  nodeMessageSchema,
  parseMessage,
  runDispatchIdentitySchema,
  type RunCancel,
  type RunDispatch,
  type RunInputRefused,
  type RunRelease,
  type RunStateEvent,
} from "../messaging/contracts.js";
import { isToolAllowed, toError, withTimeout } from "../shared/index.js";
import type { NodeMessageDelivery, SubscriptionName } from "./broker.js";
import { stateEvent, zeroUsage, type RunRef } from "./events.js";
import type { Journal, JournalRecord } from "./journal.js";
import type { AgentLogger } from "./log.js";
import type { Outbox } from "./outbox.js";
import { reportTerminal } from "./report.js";
import type { ActiveRun } from "./run.js";
import { datasetsProblem } from "./datasets.js";
import { digestProblem, policyProblem, type ToolPolicy } from "./policy.js";
import { secretsProblem, type NodeSecrets } from "./secrets.js";
import type { TrustCheck } from "./trust.js";

export interface IntakeSettings {
  nodeId: string;
  capacity: number;
  /** `name` or `name@version`; empty allows every tool. */
  allowedTools: readonly string[];
  /** Tools pinned by digest and the node's datasets (FEM_POLICY_FILE); null checks only `allowedTools`, and the node has no dataset. */
  policy: ToolPolicy | null;
  /** Node-local secrets (FEM_SECRETS_FILE); a dispatch referencing one it lacks is refused. */
  secrets: NodeSecrets;
  /** Launchers this agent runs work with. */
  launchers: readonly string[];
  /** Checks the orchestrator's signature; null runs unsigned messages (FEM_ALLOW_UNSIGNED). */
  trust: TrustCheck | null;
}

export interface IntakeDeps {
  journal: Journal;
  outbox: Outbox;
  log: AgentLogger;
  /**
   * Creates the run's directory while its acceptance is being journaled (nothing runs before the
   * journal has it); the run is then started with it. @default the run creates it itself
   */
  prepareRunDir?: (dispatch: RunDispatch) => Promise<string>;
  startRun: (dispatch: RunDispatch, runDir?: Promise<string>) => ActiveRun;
  /** A verified `run.release`; resolves once journaled (then it is acknowledged). */
  onRelease: (release: RunRelease) => Promise<void>;
  /** A verified `run.input.refused`: the run waiting for that input fails with its reason. */
  onInputRefused?: (refusal: RunInputRefused) => void;
}

export interface Intake {
  onDelivery(source: SubscriptionName, delivery: NodeMessageDelivery): void;
  activeRuns(): RunRef[];
  /** Dispatches delivered and held un-acked until a slot frees. */
  waitingRuns(): RunRef[];
  activeCount(): number;
  /** Stops taking work: deliveries waiting for a slot, and any later one, are held un-acked. */
  close(): void;
  /** Returns every held delivery to the queue, and any later one at once (call once the consumer is cancelled). */
  requeueHeld(): Promise<void>;
  /** Resolves true when no run is active, or false after `timeoutMs`. */
  waitIdle(timeoutMs: number): Promise<boolean>;
  /** Stops every active run; `handBack` reports them NODE_LOST (retried per policy) instead of CANCELLED. */
  cancelAll(reason: string, handBack?: boolean): void;
  /** SIGKILLs every active run's process group at once. */
  abortAll(): void;
}

interface Slot {
  ref: RunRef;
  run: ActiveRun | null;
  /** A cancel that arrived while the run was being journaled. */
  pendingCancel: { reason: string; handBack: boolean } | null;
}

interface Waiting {
  dispatch: RunDispatch;
  delivery: NodeMessageDelivery;
}

/** Delay before a delivery whose acceptance could not be journaled goes back to the queue. */
const JOURNAL_FAILURE_REQUEUE_DELAY_MS = 1_000;

export function createIntake(settings: IntakeSettings, deps: IntakeDeps): Intake {
  const { journal, outbox, log } = deps;
  const slots = new Map<string, Slot>();
  const waiting: Waiting[] = [];
  let idleWaiters: (() => void)[] = [];
  let closed = false;
  let requeueAtOnce = false;
  const parked: NodeMessageDelivery[] = [];

  const keyOf = (ref: RunRef) => `${ref.runId}:${ref.attempt}`;
  const tagOf = (ref: RunRef) => `run ${ref.runId}#${ref.attempt}`;

  function settle(delivery: NodeMessageDelivery, how: "ack" | "requeue", what: string): Promise<void> {
    const action = how === "ack" ? delivery.ack() : delivery.requeue();
    return action.catch((err: unknown) => log.warn(`cannot ${how} ${what}: ${toError(err).message} (the broker will redeliver it)`));
  }

  function deadLetter(delivery: NodeMessageDelivery, reason: string): void {
    log.warn(`dead-lettering a message: ${reason}`);
    delivery.deadLetter(reason).catch((err: unknown) => log.warn(`cannot dead-letter: ${toError(err).message}`));
  }

  function onDelivery(source: SubscriptionName, delivery: NodeMessageDelivery): void {
    if (closed) {
      if (requeueAtOnce) void settle(delivery, "requeue", "a message delivered during shutdown");
      else parked.push(delivery);
      return;
    }
    const sizeBytes = delivery.body.length;
    if (sizeBytes > MAX_NODE_MESSAGE_BYTES) {
      return deadLetter(delivery, `node message of ${sizeBytes} bytes on ${source} is over the ${MAX_NODE_MESSAGE_BYTES}-byte limit; not read`);
    }
    let content: unknown;
    try {
      content = JSON.parse(delivery.body.toString("utf8"));
    } catch (err) {
      return deadLetter(delivery, `node message on ${source} is not JSON: ${toError(err).message}`);
    }
    const parsed = parseMessage(nodeMessageSchema, content);
    if (!parsed.ok) return refuseInvalid(source, delivery, content, parsed.error);
    const message = parsed.value;
    if (message.nodeId !== settings.nodeId) return deadLetter(delivery, `${message.type} for node ${message.nodeId} reached node ${settings.nodeId}`);
    const trusted = settings.trust?.(message) ?? { ok: true };
    if (!trusted.ok) {
      // A cancel that is not the orchestrator's must stop nothing; a dispatch is answered so its run ends.
      if (message.type !== "run.dispatch" || source !== "runs") return deadLetter(delivery, `${message.type} of ${tagOf(message)} refused: ${trusted.reason}`);
      return refuseDispatch(message, delivery, `dispatch refused: ${trusted.reason}`);
    }
    if (message.type === "run.release") {
      if (source !== "control") return deadLetter(delivery, `run.release of ${tagOf(message)} arrived on the ${source} queue`);
      deps.onRelease(message).then(
        () => settle(delivery, "ack", `release of ${tagOf(message)}`),
        (err: unknown) => {
          log.error(`release of ${tagOf(message)}: ${toError(err).message}`);
          setTimeout(() => void settle(delivery, "requeue", "a release"), JOURNAL_FAILURE_REQUEUE_DELAY_MS);
        },
      );
      return;
    }
    if (message.type === "run.input.refused") {
      if (source !== "control") return deadLetter(delivery, `run.input.refused of ${tagOf(message)} arrived on the ${source} queue`);
      deps.onInputRefused?.(message);
      return void settle(delivery, "ack", `input refusal of ${tagOf(message)}`);
    }
    if (message.type === "run.cancel") {
      handleCancel(message).then(
        () => settle(delivery, "ack", `cancel of ${tagOf(message)}`),
        (err: unknown) => {
          log.error(`cancel of ${tagOf(message)}: ${toError(err).message}`);
          setTimeout(() => void settle(delivery, "requeue", "a cancel"), JOURNAL_FAILURE_REQUEUE_DELAY_MS);
        },
      );
      return;
    }
    if (source !== "runs") return deadLetter(delivery, `run.dispatch of ${tagOf(message)} arrived on the ${source} queue`);
    handleDispatch(message, delivery);
  }

  /** A dispatch of this node's that the schema refuses (over a cap, say) fails REJECTED_BY_NODE; anything else is dead-lettered. */
  function refuseInvalid(source: SubscriptionName, delivery: NodeMessageDelivery, content: unknown, problem: string): void {
    const identity = parseMessage(runDispatchIdentitySchema, content);
    if (!identity.ok || identity.value.nodeId !== settings.nodeId || source !== "runs") {
      return deadLetter(delivery, `invalid node message on ${source}: ${problem}`);
    }
    refuseDispatch(identity.value, delivery, `dispatch refused: ${problem}`);
  }

  /** Fails a dispatch REJECTED_BY_NODE without running it; one already journaled (a replay) is only acknowledged. */
  function refuseDispatch(ref: RunRef, delivery: NodeMessageDelivery, why: string): void {
    if (journal.get(ref.runId, ref.attempt)) {
      log.warn(`${tagOf(ref)}: already known, so not run again (${why})`);
      return void settle(delivery, "ack", `duplicate of ${tagOf(ref)}`);
    }
    const message = why.slice(0, 4_000);
    log.warn(`${tagOf(ref)}: ${message}`);
    void reportWithoutRunning({ runId: ref.runId, attempt: ref.attempt }, delivery, failed(ref, "REJECTED_BY_NODE", message));
  }

  function handleDispatch(dispatch: RunDispatch, delivery: NodeMessageDelivery): void {
    const record = journal.get(dispatch.runId, dispatch.attempt);
    if (record) return void resolveKnown(record, dispatch, delivery);
    if (!isToolAllowed(settings.allowedTools, dispatch.tool)) {
      const tool = `${dispatch.tool.name}@${dispatch.tool.version}`;
      const message = `tool ${tool} is not allowed on node ${settings.nodeId} (FEM_ALLOWED_TOOLS)`;
      log.warn(`${tagOf(dispatch)}: ${message}`);
      return void reportWithoutRunning(dispatch, delivery, failed(dispatch, "REJECTED_BY_NODE", message));
    }
    const toolProblem = digestProblem(dispatch) ?? (settings.policy && policyProblem(settings.policy, dispatch));
    if (toolProblem) return refuseDispatch(dispatch, delivery, `dispatch refused: ${toolProblem}`);
    const datasetProblem = datasetsProblem(dispatch, settings.policy?.datasets ?? [], settings.nodeId);
    if (datasetProblem) return refuseDispatch(dispatch, delivery, `dispatch refused: ${datasetProblem}`);
    const secretProblem = secretsProblem(dispatch.env, settings.secrets);
    if (secretProblem) return refuseDispatch(dispatch, delivery, `dispatch refused: tool ${dispatch.tool.name}@${dispatch.tool.version}: ${secretProblem}`);
    if (!settings.launchers.includes(dispatch.launcher)) {
      const message = `node ${settings.nodeId} has no ${dispatch.launcher} launcher (it offers ${settings.launchers.join(", ")})`;
      log.warn(`${tagOf(dispatch)}: ${message}`);
      return void reportWithoutRunning(dispatch, delivery, failed(dispatch, "LAUNCH_ERROR", message));
    }
    if (slots.size < settings.capacity) void accept(dispatch, delivery);
    else waiting.push({ dispatch, delivery });
  }

  async function resolveKnown(record: JournalRecord, dispatch: RunDispatch, delivery: NodeMessageDelivery): Promise<void> {
    const cancelledBeforeDispatch = record.cancelReason !== null && !record.accepted && record.terminal === null && !record.reported;
    if (cancelledBeforeDispatch) {
      const terminal = stateEvent(settings.nodeId, dispatch, "CANCELLED", { exitCode: null, message: record.cancelReason, usage: zeroUsage() });
      return reportWithoutRunning(dispatch, delivery, terminal);
    }
    log.info(`${tagOf(dispatch)}: duplicate delivery, acknowledged and not run again`);
    await settle(delivery, "ack", `duplicate of ${tagOf(dispatch)}`);
  }

  async function reportWithoutRunning(ref: RunRef, delivery: NodeMessageDelivery, terminal: RunStateEvent): Promise<void> {
    try {
      await journal.append({ event: "finished", ...ref, at: terminal.at, terminal });
    } catch (err) {
      log.error(`${tagOf(ref)}: ${toError(err).message}`);
      setTimeout(() => void settle(delivery, "requeue", tagOf(ref)), JOURNAL_FAILURE_REQUEUE_DELAY_MS);
      return;
    }
    await settle(delivery, "ack", tagOf(ref));
    void reportTerminal(terminal, { outbox, journal });
  }

  async function accept(dispatch: RunDispatch, delivery: NodeMessageDelivery): Promise<void> {
    const key = keyOf(dispatch);
    const slot: Slot = { ref: { runId: dispatch.runId, attempt: dispatch.attempt }, run: null, pendingCancel: null };
    slots.set(key, slot);
    const runDir = deps.prepareRunDir?.(dispatch);
    // Its failure is the run's (it fails to launch); unawaited when the journal refuses the run.
    runDir?.catch(() => undefined);
    try {
      await journal.append({ event: "accepted", ...slot.ref, at: new Date().toISOString() });
    } catch (err) {
      log.error(`${tagOf(dispatch)}: cannot journal its acceptance, so it is not taken: ${toError(err).message}`);
      release(key);
      setTimeout(() => void settle(delivery, "requeue", tagOf(dispatch)), JOURNAL_FAILURE_REQUEUE_DELAY_MS);
      return;
    }
    // Acked only now that it is durably recorded, so a redelivery is recognised as a duplicate.
    await settle(delivery, "ack", tagOf(dispatch));
    void outbox.send(stateEvent(settings.nodeId, dispatch, "ACCEPTED"));
    slot.run = deps.startRun(dispatch, runDir);
    if (slot.pendingCancel !== null) slot.run.cancel(slot.pendingCancel.reason, slot.pendingCancel.handBack);
    void slot.run.done.then(() => release(key));
  }

  function release(key: string): void {
    slots.delete(key);
    while (!closed && slots.size < settings.capacity && waiting.length > 0) {
      const next = waiting.shift();
      if (next) handleDispatch(next.dispatch, next.delivery);
    }
    if (slots.size === 0) idleWaiters = wakeAll(idleWaiters);
  }

  async function handleCancel(cancel: RunCancel): Promise<void> {
    const key = keyOf(cancel);
    const reason = cancel.reason || "cancelled";
    const slot = slots.get(key);
    if (slot) {
      log.info(`${tagOf(cancel)}: cancelling (${reason})`);
      if (slot.run) slot.run.cancel(reason);
      else slot.pendingCancel = { reason, handBack: false };
      return;
    }
    const record = journal.get(cancel.runId, cancel.attempt);
    if (record) return; // finished, lost or already cancelled: nothing to stop
    await journal.append({ event: "cancelled", ...cancel, at: new Date().toISOString(), reason });
    const index = waiting.findIndex((w) => keyOf(w.dispatch) === key);
    const held = index >= 0 ? waiting.splice(index, 1)[0] : undefined;
    if (held) handleDispatch(held.dispatch, held.delivery);
    else log.info(`${tagOf(cancel)}: cancelled before its dispatch arrived; it will not run`);
  }

  function failed(ref: RunRef, reason: "REJECTED_BY_NODE" | "LAUNCH_ERROR", message: string): RunStateEvent {
    return stateEvent(settings.nodeId, ref, "FAILED", { failureReason: reason, exitCode: null, message, usage: zeroUsage() });
  }

  return {
    onDelivery,
    activeRuns: () => [...slots.values()].map((slot) => slot.ref),
    waitingRuns: () => waiting.map((w) => ({ runId: w.dispatch.runId, attempt: w.dispatch.attempt })),
    activeCount: () => slots.size,
    close() {
      closed = true;
    },
    async requeueHeld() {
      closed = true;
      requeueAtOnce = true;
      const held = [...waiting.splice(0, waiting.length).map((w) => w.delivery), ...parked.splice(0, parked.length)];
      await Promise.all(held.map((delivery) => settle(delivery, "requeue", "a delivery held during shutdown")));
    },
    waitIdle(timeoutMs) {
      if (slots.size === 0) return Promise.resolve(true);
      const idle = new Promise<void>((resolve) => idleWaiters.push(resolve));
      return withTimeout(idle, timeoutMs, "runs still active").then(
        () => true,
        () => false,
      );
    },
    cancelAll(reason, handBack = false) {
      for (const slot of slots.values()) {
        if (slot.run) slot.run.cancel(reason, handBack);
        else slot.pendingCancel = { reason, handBack };
      }
    },
    abortAll() {
      for (const slot of slots.values()) slot.run?.abort();
    },
  };
}

function wakeAll(waiters: (() => void)[]): (() => void)[] {
  for (const wake of waiters) wake();
  return [];
}
