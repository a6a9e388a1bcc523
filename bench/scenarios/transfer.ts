/**
 * Output transfer: a real agent releases a file of `mib` MiB under `auto` → stored and checked,
 * beside raw amqplib confirm publishing of the same bytes in chunks of the same size (window 8).
 */
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import amqp from "amqplib";
import { TRANSFER_CHUNK_BYTES } from "../../src/messaging/contracts.js";
import { createTestEnv } from "../../test/support/env.js";
import { registerNodeScriptTool, SUBMIT } from "../../test/support/fixtures.js";
import { gqlOk } from "../../test/support/graphql.js";
import { waitUntil } from "../../test/support/wait.js";
import { flag, load1, publishWindowed, type ScenarioResult } from "../lib.js";

/** MiB/s of publishing `mib` MiB in chunks of TRANSFER_CHUNK_BYTES to a quorum queue with confirms (a window of 8, as the agent). */
async function rawChunkBaseline(url: string, mib: number): Promise<number> {
  const connection = await amqp.connect(url, { noDelay: true });
  const channel = await connection.createConfirmChannel();
  const queue = `bench.chunks.${randomUUID()}`;
  await channel.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
  const chunks = Math.ceil((mib * 1024 * 1024) / TRANSFER_CHUNK_BYTES);
  const started = performance.now();
  await publishWindowed(channel, queue, Buffer.alloc(TRANSFER_CHUNK_BYTES, "x"), chunks, 8);
  const ms = performance.now() - started;
  await channel.deleteQueue(queue);
  await connection.close();
  return (mib / ms) * 1000;
}

export async function transferScenario(args: string[]): Promise<ScenarioResult> {
  const mib = flag(args, "mib", 100);
  const before = load1();
  const env = await createTestEnv();
  try {
    await env.registerNodes(["bench-t"]);
    const policy = join(env.sandboxRoot, "bench-t-policy.yaml");
    await writeFile(policy, "allow: any\noutputs: auto\n");
    const agent = await env.startAgent("bench-t", { env: { FEM_POLICY_FILE: policy } });
    const writer = `const fs = require('fs'); const f = fs.openSync('file.bin', 'w'); const b = require('crypto').randomBytes(1048576); for (let i = 0; i < ${mib}; i++) fs.writeSync(f, b); fs.closeSync(f);`;
    const tool = await registerNodeScriptTool(env.orchestrator.url, "bench-file", writer, { outputs: ["file.bin"] });
    await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "f", tool, nodes: ["bench-t"] }] } });
    const [stored] = await waitUntil(async () => {
      const rows = await env.sql<{ ms: number; state: string }>(`select extract(epoch from stored_at - decided_at) * 1000 as ms, state from artifact where path = 'file.bin'`);
      return rows[0]?.state === "AVAILABLE" ? rows : undefined;
    }, 600_000, "the file to be stored", 100);
    await agent.stop();
    const miBs = (mib / Number(stored.ms)) * 1000;
    const raw = await rawChunkBaseline(env.vhost.url, mib);
    const round = (n: number) => Math.round(n * 10) / 10;
    return {
      name: "transfer",
      title: `Output transfer: a ${mib} MiB released file, node → orchestrator (chunks of ${TRANSFER_CHUNK_BYTES / 1024} KiB, stored and checked)`,
      figures: [
        { label: "MiB/s", value: round(miBs), unit: "MiB/s", baseline: { label: "amqplib confirmed publish of the same chunks, window 8", value: round(raw) }, target: "≥ 50 % of raw", met: miBs / raw >= 0.5 },
      ],
      notes: [],
      load: { before, after: load1() },
      at: new Date().toISOString(),
    };
  } finally {
    await env.dispose();
  }
}
