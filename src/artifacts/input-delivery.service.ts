/**
 * Delivering input files to the nodes of dependent runs: a node asks (`run.fetch`) for chunks of a
 * file its run's signed dispatch names; the server checks that the run is live on that node and
 * that the artifact is one of its inputs, reads the chunks from the artifact store and publishes
 * them, with confirms, to the node's inputs queue. A file that can no longer be delivered (expired,
 * gone from the store) is answered with a signed `run.input.refused`, so the run fails with the
 * reason rather than waiting. Requests are served one at a time, in order; the agent asks again
 * for what does not arrive, so a dropped request only costs time. Framework-free.
 */
import { createHash, randomUUID } from "node:crypto";
import type { MikroORM } from "@mikro-orm/postgresql";
import type { EntityManager } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
import { ChangeSet, type AfterCommit } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { runInputChunkMessage, type RunFetchEvent, type RunInputChunk } from "../messaging/contracts.js";
import { enqueueInputRefusal, inputFilesOfRuns } from "../runs/index.js";
import { toError } from "../shared/index.js";
import { chunkCount } from "./transfer.service.js";
import type { ArtifactStore, StoredFile } from "./artifact-store.js";

/** A message for the broker, published with confirms. */
export interface InputChunkOut {
  exchange: string;
  routingKey: string;
  payload: RunInputChunk;
  messageId: string;
}

export interface InputServerDeps {
  orm: MikroORM;
  store: ArtifactStore;
  afterCommit: AfterCommit;
  logger: Logger;
  /** Publishes with confirms; resolves with whether each was confirmed. */
  publish(messages: InputChunkOut[]): Promise<boolean[]>;
  /** Sees every chunk before it is published, and may replace it (tests alter one on purpose). */
  onChunk?: (chunk: RunInputChunk) => RunInputChunk;
  /** Requests waiting beyond which new ones are dropped (their agents ask again). @default 1_000 */
  maxPending?: number;
}

export interface InputServer {
  /** Queues requests already checked as their node's own runs. */
  serve(fetches: readonly RunFetchEvent[]): void;
  /** Chunks published, requests refused or ignored, and requests waiting or being served now. */
  stats(): { chunksSent: number; refused: number; ignored: number; pending: number };
  stop(): Promise<void>;
}

/** Run states in which a node may fetch its inputs: dispatched and not ended. */
const FETCHING_STATES = ["QUEUED", "ACCEPTED", "RUNNING"];

export function createInputServer(deps: InputServerDeps): InputServer {
  const maxPending = deps.maxPending ?? 1_000;
  // By (run, attempt, file): a node that asks again before it was served (it is slow to serve, not
  // lost) adds to the request waiting, instead of queueing the same chunks twice.
  const pending = new Map<string, RunFetchEvent>();
  const counts = { chunksSent: 0, refused: 0, ignored: 0 };
  let working: Promise<void> | null = null;
  let stopped = false;

  async function work(): Promise<void> {
    while (pending.size > 0 && !stopped) {
      const [key, fetch] = pending.entries().next().value as [string, RunFetchEvent];
      pending.delete(key);
      try {
        await serveOne(fetch);
      } catch (err) {
        deps.logger.warn("cannot serve an input fetch; the node will ask again", { runId: fetch.runId, artifactId: fetch.artifactId, error: toError(err).message });
      }
    }
  }

  async function refuse(em: EntityManager, fetch: RunFetchEvent, reason: string): Promise<void> {
    counts.refused += 1;
    deps.logger.warn("an input file cannot be delivered; its run is told", { runId: fetch.runId, artifactId: fetch.artifactId, reason });
    const changes = new ChangeSet();
    await em.transactional((tx) => enqueueInputRefusal(tx, { runId: fetch.runId, attempt: fetch.attempt, nodeId: fetch.nodeId, artifactId: fetch.artifactId, reason }, changes));
    deps.afterCommit(changes);
  }

  async function serveOne(fetch: RunFetchEvent): Promise<void> {
    const em = deps.orm.em.fork();
    const [run] = await query<{ state: string; attempt: number; node_id: string }>(em, `select state, attempt, node_id from run where id = ?`, [fetch.runId]);
    if (!run || run.attempt !== fetch.attempt || run.node_id !== fetch.nodeId || !FETCHING_STATES.includes(run.state)) {
      counts.ignored += 1;
      return;
    }
    const file = (await inputFilesOfRuns(em, [fetch.runId])).get(fetch.runId)?.find((f) => f.artifactId === fetch.artifactId);
    if (!file) {
      counts.ignored += 1;
      deps.logger.warn("a node asked for a file that is not an input of its run; ignored", { nodeId: fetch.nodeId, runId: fetch.runId, artifactId: fetch.artifactId });
      return;
    }
    const name = `${file.task}/${file.node}/${file.path}`;
    if (file.state !== "AVAILABLE") return refuse(em, fetch, `input ${name} is ${file.state}${file.reason ? `: ${file.reason}` : ""}`);
    const stored = await deps.store.open(file.artifactId);
    if (!stored || stored.sizeBytes !== file.sizeBytes) return refuse(em, fetch, `input ${name} is no longer in the orchestrator's artifact store`);
    const count = chunkCount(file.sizeBytes, fetch.chunkBytes);
    const messages: InputChunkOut[] = [];
    for (const index of new Set(fetch.chunks)) {
      if (index >= count) continue;
      const data = await readChunk(stored, index, fetch.chunkBytes);
      let payload = runInputChunkMessage({
        nodeId: fetch.nodeId,
        runId: fetch.runId,
        attempt: fetch.attempt,
        artifactId: file.artifactId,
        fileSha256: file.sha256,
        index,
        chunkBytes: fetch.chunkBytes,
        sha256: createHash("sha256").update(data).digest("hex"),
        data: data.toString("base64"),
      }).payload;
      if (deps.onChunk) payload = deps.onChunk(payload);
      const target = runInputChunkMessage(payload);
      messages.push({ exchange: target.exchange, routingKey: target.routingKey, payload, messageId: randomUUID() });
    }
    const confirmed = await deps.publish(messages);
    counts.chunksSent += confirmed.filter(Boolean).length;
  }

  return {
    serve(fetches) {
      if (stopped) return;
      for (const fetch of fetches) {
        const key = `${fetch.runId}:${fetch.attempt}:${fetch.artifactId}:${fetch.chunkBytes}`;
        const waiting = pending.get(key);
        if (waiting) {
          waiting.chunks = [...new Set([...waiting.chunks, ...fetch.chunks])];
          continue;
        }
        if (pending.size >= maxPending) {
          counts.ignored += 1;
          continue;
        }
        pending.set(key, { ...fetch, chunks: [...fetch.chunks] });
      }
      working ??= work().finally(() => (working = null));
    },
    stats: () => ({ ...counts, pending: pending.size + (working ? 1 : 0) }),
    async stop() {
      stopped = true;
      pending.clear();
      await working;
    },
  };
}

/** Bytes `[index × chunkBytes, …)` of a stored file. */
async function readChunk(stored: StoredFile, index: number, chunkBytes: number): Promise<Buffer> {
  const start = index * chunkBytes;
  const end = Math.min(stored.sizeBytes, start + chunkBytes) - 1;
  if (end < start) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for await (const part of stored.read({ start, end })) parts.push(part as Buffer);
  return Buffer.concat(parts);
}
