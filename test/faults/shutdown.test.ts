import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createSharedServices, type SharedServices } from "../support/cluster.js";
import { addToTestProject, createTestProject, gql, gqlOk } from "../support/graphql.js";
import { REGISTER_TOOL, SUBMIT } from "../support/fixtures.js";
import { spawnOrchestrator } from "../support/orchestrator-process.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("graceful shutdown");
let services: SharedServices;

test.before(async () => {
  services = await createSharedServices();
});

test.after(async () => services?.dispose());

test("SIGTERM during a burst of submissions: the process exits cleanly and every accepted submission is dispatched after restart", async () => {
  const env = { DATABASE_URL: services.db.url, AMQP_URL: services.vhost.url };
  const first = await spawnOrchestrator(env);
  await createTestProject(first.url);
  await gqlOk(first.url, `mutation { registerNode(input: { id: "site-idle", capacity: 1000 }) { node { id } } }`);
  await addToTestProject(first.url, ["site-idle"]);
  await gqlOk(first.url, REGISTER_TOOL, { input: { name: "idle", version: "1", executable: "true" } });
  const accepted: string[] = [];
  let refused = 0;
  const burst = Array.from({ length: 60 }, async (_, i) => {
    await sleep(i * 10);
    const tasks = Array.from({ length: 5 }, (_, k) => ({ key: `t${k}`, tool: "idle@1", nodes: ["site-idle"] }));
    try {
      const result = await gql(first.url, SUBMIT, { input: { tasks } });
      if (result.data?.submitWorkflow) accepted.push(result.data.submitWorkflow.id);
      else refused += 1;
    } catch {
      refused += 1;
    }
  });
  await sleep(250);
  const exitCode = first.terminate(20_000);
  await Promise.all(burst);
  assert.is(await exitCode, 0, first.output());
  assert.ok(accepted.length > 0, "some submissions were accepted before the signal");
  console.log(`    (${accepted.length} accepted, ${refused} refused during shutdown)`);

  const restarted = await spawnOrchestrator(env);
  try {
    await waitUntil(
      async () => {
        const rows = await services.sql<{ n: string }>(
          `select count(*) n from run r where r.workflow_id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) and r.dispatched_at is not null`,
          [JSON.stringify(accepted)],
        );
        return Number(rows[0].n) === accepted.length * 5;
      },
      30_000,
      "every run of every accepted workflow to be dispatched",
    );
    const [unsent] = await services.sql<{ n: string }>(`select count(*) n from outbox where sent_at is null`);
    await waitUntil(async () => Number((await services.sql<{ n: string }>(`select count(*) n from outbox where sent_at is null`))[0].n) === 0, 30_000, `the outbox to drain (${unsent.n} left)`);
  } finally {
    assert.is(await restarted.terminate(), 0);
  }
});

test.run();
