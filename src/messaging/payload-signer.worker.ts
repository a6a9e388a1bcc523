/** Entry of the signing worker thread (see payload-signer.ts). */
import { parentPort, workerData } from "node:worker_threads";
import { serveSigning } from "./payload-signer.js";

if (!parentPort) throw new Error("payload-signer.worker runs only as a worker thread");
serveSigning(parentPort, (workerData as { keyDer: Uint8Array }).keyDer);
