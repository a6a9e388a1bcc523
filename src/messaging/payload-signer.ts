/**
 * Turns outbox payloads into the bytes the relay publishes: each parsed as the agent will parse it
 * (defaults applied) and signed with the orchestrator's key, one signature per message, issued
 * when it is signed. A payload that is no node message goes as it is, unsigned, with the problem.
 * The work can run in a worker thread so the relay's thread only publishes.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { Worker } from "node:worker_threads";
import { canonicalJson } from "../shared/canonical-json.js";
import { nodeMessageSchema, parseMessage, signedNodeMessageJson, type NodeMessage } from "./contracts.js";
import { toError } from "../shared/index.js";

export interface SignedPayload {
  /** The JSON to publish. */
  body: Buffer;
  /** Why the payload is no node message (it is then published unsigned); null when it was signed. */
  problem: string | null;
}

export interface PayloadSigner {
  /** Each payload (JSON text), in order, as the bytes to publish. */
  signAll(payloads: string[]): Promise<SignedPayload[]>;
  stop(): Promise<void>;
}

/** Each payload (JSON text), in order, as the bytes to publish. */
export function signPayloads(payloads: readonly string[], privateKey: KeyObject): SignedPayload[] {
  // The dispatches of a batch mostly share a tool, the largest part of each: written once per batch.
  const toolsByJson = new Map<string, object>();
  const known = new Map<object, string>();
  const shared = (message: NodeMessage): NodeMessage => {
    if (message.type !== "run.dispatch") return message;
    const json = JSON.stringify(message.tool);
    const tool = toolsByJson.get(json);
    if (tool) return { ...message, tool: tool as typeof message.tool };
    toolsByJson.set(json, message.tool);
    known.set(message.tool, canonicalJson(message.tool));
    return message;
  };
  return payloads.map((payload) => {
    const value: unknown = JSON.parse(payload);
    const parsed = parseMessage(nodeMessageSchema, value);
    if (!parsed.ok) return { body: Buffer.from(JSON.stringify(value)), problem: parsed.error };
    return { body: Buffer.from(signedNodeMessageJson(shared(parsed.value), privateKey, new Date(), known)), problem: null };
  });
}

/** Signs on the caller's thread. */
export function createInlineSigner(privateKey: KeyObject): PayloadSigner {
  return {
    signAll: async (payloads) => signPayloads(payloads, privateKey),
    stop: async () => undefined,
  };
}

/** What the worker is sent: the payloads of one batch. */
export interface SignRequest {
  id: number;
  payloads: string[];
}

/** What the worker answers: every body in one buffer (transferred, not copied), cut at `ends`. */
export type SignResponse = { id: number; bytes: ArrayBuffer; ends: number[]; problems: (string | null)[] } | { id: number; error: string };

export interface WorkerSignerOptions {
  /** Longest wait for one batch's signatures; the worker is then replaced. @default 30_000 // 30 seconds */
  timeoutMs?: number;
}

/** Splits each batch evenly (in order) over `workers` worker signers, so its parts are signed at once. */
export function createWorkerSignerPool(privateKey: KeyObject, workers: number, options: WorkerSignerOptions = {}): PayloadSigner {
  const signers = Array.from({ length: Math.max(1, workers) }, () => createWorkerSigner(privateKey, options));
  return {
    async signAll(payloads) {
      const size = Math.ceil(payloads.length / signers.length);
      const parts = signers.map((signer, i) => signer.signAll(payloads.slice(i * size, (i + 1) * size)));
      return (await Promise.all(parts)).flat();
    },
    async stop() {
      await Promise.all(signers.map((signer) => signer.stop()));
    },
  };
}

interface Pending {
  resolve: (signed: SignedPayload[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Signs in one worker thread, started at once (loading it takes a while) and again on the next
 * batch after it fails. The private key goes to the worker as PKCS#8 DER through its start data,
 * never through a file or the environment.
 */
export function createWorkerSigner(privateKey: KeyObject, options: WorkerSignerOptions = {}): PayloadSigner {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const keyDer = privateKey.export({ type: "pkcs8", format: "der" });
  const pending = new Map<number, Pending>();
  let worker: Worker | null = null;
  let nextId = 1;
  let stopped = false;

  function failAll(err: Error): void {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(err);
    }
  }

  function start(): Worker {
    const w = new Worker(new URL("./payload-signer.worker.js", import.meta.url), { workerData: { keyDer } });
    w.unref();
    w.on("message", (response: SignResponse) => {
      const p = pending.get(response.id);
      if (!p) return;
      pending.delete(response.id);
      clearTimeout(p.timer);
      if ("error" in response) {
        p.reject(new Error(`signing failed: ${response.error}`));
        return;
      }
      const bytes = Buffer.from(response.bytes);
      p.resolve(response.problems.map((problem, i) => ({ body: bytes.subarray(i === 0 ? 0 : response.ends[i - 1], response.ends[i]), problem })));
    });
    const drop = (err: Error) => {
      if (worker === w) worker = null;
      failAll(err);
    };
    w.on("error", (err) => drop(new Error(`the signing worker failed: ${toError(err).message}`, { cause: err })));
    w.on("exit", (code) => drop(new Error(`the signing worker exited (code ${code})`)));
    return w;
  }

  worker = start();

  return {
    signAll(payloads) {
      if (stopped) return Promise.reject(new Error("the payload signer is stopped"));
      if (payloads.length === 0) return Promise.resolve([]);
      const w = (worker ??= start());
      const id = nextId++;
      return new Promise<SignedPayload[]>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`no signatures from the signing worker within ${timeoutMs} ms`));
          // A worker that does not answer is replaced; whatever else it holds fails with it.
          if (worker === w) worker = null;
          void w.terminate();
        }, timeoutMs);
        pending.set(id, { resolve, reject, timer });
        w.postMessage({ id, payloads } satisfies SignRequest);
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const w = worker;
      worker = null;
      failAll(new Error("the payload signer is stopped"));
      await w?.terminate();
    },
  };
}

/** The worker's side: answers each request with the signed bodies of its payloads. */
export function serveSigning(port: { on(event: "message", listener: (request: SignRequest) => void): void; postMessage(response: SignResponse, transfer: ArrayBuffer[]): void }, keyDer: Uint8Array): void {
  const key = createPrivateKey({ key: Buffer.from(keyDer), format: "der", type: "pkcs8" });
  port.on("message", ({ id, payloads }) => {
    try {
      const signed = signPayloads(payloads, key);
      const ends: number[] = [];
      let length = 0;
      for (const s of signed) ends.push((length += s.body.length));
      const bytes = new Uint8Array(length);
      let offset = 0;
      for (const s of signed) {
        bytes.set(s.body, offset);
        offset += s.body.length;
      }
      port.postMessage({ id, bytes: bytes.buffer, ends, problems: signed.map((s) => s.problem) }, [bytes.buffer]);
    } catch (err) {
      port.postMessage({ id, error: toError(err).message }, []);
    }
  });
}
