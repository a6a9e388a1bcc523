/** A worker thread of `count` plain `ws` clients counting messages; posts `{ ready }` when all are open and `{ done, ms }` when each has `expected`. */
import { parentPort, workerData } from "node:worker_threads";
import WebSocket from "ws";

const job = workerData as { url: string; count: number; expected: number; timeoutMs: number };
let open = 0;
let finished = 0;
const timer = setTimeout(() => parentPort!.postMessage({ done: true, problems: ["timed out"] }), job.timeoutMs);
const sockets = Array.from({ length: job.count }, () => {
  const socket = new WebSocket(job.url);
  let received = 0;
  socket.on("open", () => {
    open += 1;
    if (open === job.count) parentPort!.postMessage({ ready: true });
  });
  socket.on("message", (data) => {
    JSON.parse(String(data));
    received += 1;
    if (received === job.expected && ++finished === job.count) {
      clearTimeout(timer);
      parentPort!.postMessage({ done: true, problems: [] });
      for (const s of sockets) s.close();
      setTimeout(() => process.exit(0), 100);
    }
  });
  return socket;
});
