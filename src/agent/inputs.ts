/**
 * Fetching a run's input files (the upstream artifacts its signed dispatch names) before it starts:
 * the agent asks the orchestrator for chunks (`run.fetch`, a window at a time), receives them on the
 * node's inputs queue, checks each against its sha256 and stages it in the input cache, joins the
 * file and checks it against the dispatch's sha256, then copies it read-only to
 * `inputs/<task>/<node>/<path>` in the run's directory. A corrupt chunk is asked for again; a file
 * that fails its checksum is fetched again, up to a limit; a refusal from the orchestrator, or no
 * chunk for too long, ends the fetch with a reason the run fails with.
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import {
  INPUTS_DIR,
  MAX_FETCH_CHUNKS,
  MAX_NODE_MESSAGE_BYTES,
  parseMessage,
  runInputChunkSchema,
  TRANSFER_CHUNK_BYTES,
  WIRE_VERSION,
  type RunDispatch,
  type RunInputChunk,
  type RunInputFile,
  type RunInputRefused,
} from "../messaging/contracts.js";
import { toError } from "../shared/index.js";
import type { NodeMessageDelivery } from "./broker.js";
import { fileSha256, inputCacheEntry, type InputCacheEntry } from "./input-cache.js";
import type { AgentLogger } from "./log.js";
import type { Outbox } from "./outbox.js";

export interface InputFetchSettings {
  nodeId: string;
  sandboxDir: string;
  /** @default TRANSFER_CHUNK_BYTES */
  chunkBytes?: number;
  /** Chunks asked for and not yet received, at most. @default 32 // 8 MiB */
  windowChunks?: number;
  /** Wait without any chunk before asking again for what is missing. @default 15_000 // 15 seconds */
  stallMs?: number;
  /** Asks in a row without any chunk before the fetch fails. @default 8 */
  maxStalls?: number;
  /** Times a joined file may fail its checksum before the fetch fails. @default 3 */
  maxChecksumFailures?: number;
}

/** An input file placed in a run's directory, as `fem-inputs.json` lists it. */
export interface PlacedInput extends RunInputFile {
  /** Where the run finds it, relative to its directory: `inputs/<task>/<node>/<path>`. */
  file: string;
}

export interface InputFetcher {
  /**
   * Places the dispatch's input files in `runDir`; resolves with them, or with why the run cannot
   * start (a refusal, a checksum failing again and again, nothing arriving, `signal` aborted).
   */
  fetchInto(dispatch: RunDispatch, runDir: string, options: { signal: AbortSignal; note(text: string): void }): Promise<{ ok: true; placed: PlacedInput[] } | { ok: false; reason: string }>;
  /** A delivery from the node's inputs queue. */
  onDelivery(delivery: NodeMessageDelivery): void;
  /** A verified `run.input.refused`. */
  onRefused(message: RunInputRefused): void;
  stop(): void;
}

interface Download {
  ref: { runId: string; attempt: number };
  file: RunInputFile;
  entry: InputCacheEntry;
  count: number;
  have: Set<number>;
  /** Chunks asked for and not received. */
  asked: Set<number>;
  refused: string | null;
  /** Chunks stored or dropped since the start: waiters compare it to see progress. */
  events: number;
  wake: (() => void) | null;
  note(text: string): void;
}

export function createInputFetcher(settings: InputFetchSettings, deps: { outbox: Outbox; log: AgentLogger }): InputFetcher {
  const chunkBytes = settings.chunkBytes ?? TRANSFER_CHUNK_BYTES;
  const windowChunks = Math.min(settings.windowChunks ?? 32, MAX_FETCH_CHUNKS);
  const stallMs = settings.stallMs ?? 15_000;
  const maxStalls = settings.maxStalls ?? 8;
  const maxChecksumFailures = settings.maxChecksumFailures ?? 3;
  const downloads = new Map<string, Download>();
  let stopped = false;

  const keyOf = (runId: string, attempt: number, artifactId: string) => `${runId}:${attempt}:${artifactId}`;
  const nameOf = (file: RunInputFile) => `${file.task}/${file.node}/${file.path}`;

  function progressed(d: Download): void {
    d.events += 1;
    const wake = d.wake;
    d.wake = null;
    wake?.();
  }

  function ask(d: Download): void {
    const missing: number[] = [];
    for (let i = 0; i < d.count && d.asked.size + missing.length < windowChunks; i += 1) if (!d.have.has(i) && !d.asked.has(i)) missing.push(i);
    if (missing.length === 0) return;
    for (const i of missing) d.asked.add(i);
    void deps.outbox.send({
      type: "run.fetch",
      v: WIRE_VERSION,
      nodeId: settings.nodeId,
      runId: d.ref.runId,
      attempt: d.ref.attempt,
      at: new Date().toISOString(),
      artifactId: d.file.artifactId,
      chunkBytes,
      chunks: missing,
    });
  }

  /** Resolves true when a chunk arrived (or was dropped) within `stallMs`, false otherwise. */
  function waitForProgress(d: Download, signal: AbortSignal): Promise<boolean> {
    const before = d.events;
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", finish);
        resolve(d.events !== before);
      };
      const timer = setTimeout(finish, stallMs);
      signal.addEventListener("abort", finish, { once: true });
      d.wake = finish;
    });
  }

  async function fetchOne(d: Download, signal: AbortSignal): Promise<{ ok: true; source: string } | { ok: false; reason: string }> {
    const name = nameOf(d.file);
    let failures = 0;
    for (;;) {
      const cached = await d.entry.complete();
      if (cached) return { ok: true, source: cached };
      d.have = await d.entry.staged(chunkBytes);
      if (d.have.size > 0 && d.have.size < d.count) d.note(`input ${name}: ${d.have.size} of ${d.count} chunk(s) already on the node; asking for the rest`);
      let stalls = 0;
      while (d.have.size < d.count) {
        if (stopped || signal.aborted) return { ok: false, reason: "cancelled while fetching its inputs" };
        if (d.refused !== null) return { ok: false, reason: d.refused };
        if (d.asked.size <= windowChunks / 2) ask(d);
        if (await waitForProgress(d, signal)) {
          stalls = 0;
          continue;
        }
        if (signal.aborted || d.refused !== null) continue;
        stalls += 1;
        if (stalls > maxStalls) return { ok: false, reason: `input ${name}: no chunk arrived in ${stalls} waits of ${stallMs} ms` };
        d.note(`input ${name}: no chunk for ${stallMs} ms; asking again for the ${d.count - d.have.size} missing`);
        d.asked.clear();
      }
      const joined = await d.entry.join(chunkBytes, d.count, { sizeBytes: d.file.sizeBytes, sha256: d.file.sha256 });
      if (joined.ok) return { ok: true, source: joined.file };
      failures += 1;
      if (failures >= maxChecksumFailures) return { ok: false, reason: `input ${name} failed its checksum ${failures} times: ${joined.problem}` };
      d.note(`input ${name} failed its checksum (${joined.problem}); fetching it again`);
      d.have.clear();
      d.asked.clear();
    }
  }

  async function fetchInto(dispatch: RunDispatch, runDir: string, options: { signal: AbortSignal; note(text: string): void }) {
    const files = dispatch.inputs ?? [];
    const placed: PlacedInput[] = [];
    for (const file of files) {
      const key = keyOf(dispatch.runId, dispatch.attempt, file.artifactId);
      const d: Download = {
        ref: { runId: dispatch.runId, attempt: dispatch.attempt },
        file,
        entry: inputCacheEntry(settings.sandboxDir, file.sha256),
        count: Math.max(1, Math.ceil(file.sizeBytes / chunkBytes)),
        have: new Set(),
        asked: new Set(),
        refused: null,
        events: 0,
        wake: null,
        note: options.note,
      };
      downloads.set(key, d);
      try {
        const fetched = await fetchOne(d, options.signal);
        if (!fetched.ok) return { ok: false as const, reason: fetched.reason };
        const problem = await place(runDir, file, fetched.source);
        if (problem) return { ok: false as const, reason: problem };
        placed.push({ ...file, file: path.posix.join(INPUTS_DIR, file.task, file.node, file.path) });
        options.note(`input ${nameOf(file)} placed (${file.sizeBytes} bytes, sha256 ${file.sha256})`);
      } finally {
        downloads.delete(key);
      }
    }
    if (placed.length > 0) await sealDirs(path.join(runDir, INPUTS_DIR));
    return { ok: true as const, placed };
  }

  async function receive(chunk: RunInputChunk): Promise<void> {
    const d = downloads.get(keyOf(chunk.runId, chunk.attempt, chunk.artifactId));
    if (!d) return; // a fetch that ended (or a previous agent's): nothing waits for it
    if (chunk.fileSha256 !== d.file.sha256 || chunk.chunkBytes !== chunkBytes || chunk.index >= d.count) {
      d.note(`input ${nameOf(d.file)}: dropped a chunk that does not fit the file (index ${chunk.index}, ${chunk.chunkBytes}-byte chunks, file sha256 ${chunk.fileSha256})`);
      return progressed(d);
    }
    if (d.have.has(chunk.index)) return;
    const data = Buffer.from(chunk.data, "base64");
    const expectedBytes = Math.min(chunkBytes, d.file.sizeBytes - chunk.index * chunkBytes);
    const sha256 = createHash("sha256").update(data).digest("hex");
    if (data.length !== expectedBytes || sha256 !== chunk.sha256) {
      d.asked.delete(chunk.index);
      d.note(`input ${nameOf(d.file)}: chunk ${chunk.index} failed its checksum (${data.length} bytes with sha256 ${sha256}); asked for again`);
      return progressed(d);
    }
    await d.entry.put(chunkBytes, chunk.index, data);
    d.have.add(chunk.index);
    d.asked.delete(chunk.index);
    progressed(d);
  }

  return {
    fetchInto,
    onDelivery(delivery) {
      const settle = () => delivery.ack().catch(() => undefined);
      if (delivery.body.length > MAX_NODE_MESSAGE_BYTES) {
        deps.log.warn(`an input chunk of ${delivery.body.length} bytes is over the limit; dropped`);
        return void settle();
      }
      let content: unknown;
      try {
        content = JSON.parse(delivery.body.toString("utf8"));
      } catch (err) {
        deps.log.warn(`an input chunk is not JSON (${toError(err).message}); dropped`);
        return void settle();
      }
      const parsed = parseMessage(runInputChunkSchema, content);
      if (!parsed.ok || parsed.value.nodeId !== settings.nodeId) {
        deps.log.warn(`an invalid input chunk was dropped: ${parsed.ok ? `it is for node ${parsed.value.nodeId}` : parsed.error}`);
        return void settle();
      }
      receive(parsed.value).then(settle, (err: unknown) => {
        deps.log.warn(`cannot stage an input chunk: ${toError(err).message} (it will be asked for again)`);
        void settle();
      });
    },
    onRefused(message) {
      const d = downloads.get(keyOf(message.runId, message.attempt, message.artifactId));
      if (!d) return;
      d.refused = `the orchestrator cannot deliver input ${nameOf(d.file)}: ${message.reason}`;
      progressed(d);
    },
    stop() {
      stopped = true;
      for (const d of downloads.values()) progressed(d);
    },
  };
}

/** Copies a verified file to `inputs/<task>/<node>/<path>` in the run's directory, read-only, and checks the copy; returns a problem or null. */
async function place(runDir: string, file: RunInputFile, source: string): Promise<string | null> {
  const root = path.join(runDir, INPUTS_DIR);
  const target = path.resolve(root, file.task, file.node, file.path);
  if (!target.startsWith(root + path.sep)) return `input ${file.task}/${file.node}/${file.path} would leave the run's inputs folder`;
  await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
  await fs.copyFile(source, target, constants.COPYFILE_FICLONE);
  await fs.chmod(target, 0o444);
  const sha256 = await fileSha256(target);
  if (sha256 !== file.sha256) return `input ${file.task}/${file.node}/${file.path}: the copy in the run's directory has sha256 ${sha256}, not ${file.sha256}`;
  return null;
}

/** Makes every folder under `root` (and `root`) read-only, deepest first. */
async function sealDirs(root: string): Promise<void> {
  for (const entry of await fs.readdir(root, { withFileTypes: true })) if (entry.isDirectory()) await sealDirs(path.join(root, entry.name));
  await fs.chmod(root, 0o555);
}
