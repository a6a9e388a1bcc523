#!/usr/bin/env node
// Prints the log lines of one run, the stored ones first and then live ones as the run writes
// them, until the run has ended and every line is printed.
//
//   node examples/follow-logs.mjs <runId> [afterSeq]
//
// FEM_URL is the orchestrator's GraphQL URL (default http://127.0.0.1:4000/graphql), FEM_TOKEN your API token; the
// WebSocket is the same URL with ws://. Each line is printed as "<seq> <STREAM> <text>". Exit
// status: 0 when the run SUCCEEDED, 1 when it ended in another state, 2 on an error.
// Needs the graphql-ws and ws packages (installed in this repository).
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [runId, afterSeq = "0"] = process.argv.slice(2);
if (!runId || !/^\d+$/.test(afterSeq)) {
  console.error("usage: node examples/follow-logs.mjs <runId> [afterSeq]");
  process.exit(2);
}
const url = (process.env.FEM_URL ?? "http://127.0.0.1:4000/graphql").replace(/^http/, "ws");
const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"];
const QUIET_MS = 1_000; // after this long without a line, ask whether the run has ended

const RUN_LOGS = `subscription ($runId: ID!, $afterSeq: Int) {
  runLogs(runId: $runId, afterSeq: $afterSeq) { lines { seq stream text } }
}`;
const RUN_STATE = `query ($id: ID!) { run(id: $id) { state logLineCount } }`;

// The token travels in connection_init; without a valid one the server closes the socket (4403).
const token = process.env.FEM_TOKEN;
const client = createClient({ url, webSocketImpl: WebSocket, connectionParams: token ? { authorization: `Bearer ${token}` } : {} });

/** The error callback gets an Error, a list of GraphQL errors, or the socket's close event. */
function describe(err) {
  if (Array.isArray(err)) return err.map((e) => `${e.extensions?.code ?? "ERROR"}: ${e.message}`).join("; ");
  if (err instanceof Error) return err.message;
  return `connection closed (${err?.code ?? "?"} ${err?.reason ?? ""})`;
}

/** One query over the same connection; resolves with its data. */
function query(text, variables) {
  return new Promise((resolve, reject) => {
    let result;
    client.subscribe(
      { query: text, variables },
      {
        next: (value) => (result = value),
        error: reject,
        complete: () => (result?.errors ? reject(result.errors) : resolve(result?.data)),
      },
    );
  });
}

function follow() {
  let lastSeq = Number(afterSeq);
  let lastLineAt = Date.now();
  let checking = false;
  let timer;
  let unsubscribe = () => undefined;
  return new Promise((resolve, reject) => {
    const settle = (fn, value) => {
      clearInterval(timer);
      unsubscribe();
      fn(value);
    };
    // Never completes by itself: replays the stored lines after afterSeq, then stays live.
    unsubscribe = client.subscribe(
      { query: RUN_LOGS, variables: { runId, afterSeq: lastSeq } },
      {
        next: ({ data, errors }) => {
          if (errors) return settle(reject, errors);
          for (const line of data.runLogs.lines) {
            if (line.seq <= lastSeq) continue; // after a reconnect the client resubscribes from the first afterSeq
            console.log(`${line.seq} ${line.stream} ${line.text}`);
            lastSeq = line.seq;
          }
          lastLineAt = Date.now();
        },
        error: (err) => settle(reject, err),
        complete: () => undefined,
      },
    );
    timer = setInterval(async () => {
      if (checking || Date.now() - lastLineAt < QUIET_MS) return;
      checking = true;
      try {
        const { run } = await query(RUN_STATE, { id: runId });
        // A run's lines are stored before its final state: once it has ended, logLineCount is final.
        if (TERMINAL.includes(run.state) && lastSeq >= run.logLineCount) settle(resolve, run.state);
      } catch (err) {
        settle(reject, err);
      } finally {
        checking = false;
        lastLineAt = Date.now();
      }
    }, 200);
  });
}

let exitCode = 2;
try {
  const state = await follow();
  console.error(`run ${runId} ended: ${state}`);
  exitCode = state === "SUCCEEDED" ? 0 : 1;
} catch (err) {
  console.error(`follow-logs.mjs: ${describe(err)}`);
} finally {
  await client.dispose();
}
process.exit(exitCode);
