/**
 * `npm run bench [-- scenario… --flag=value…]`: the hot paths of issue 14 next to raw baselines
 * measured in the same run on the same services (each scenario on its own database and vhost,
 * removed afterwards). Prints each result and rewrites docs/benchmarks.md, .svg and .json with the
 * latest result of each scenario (`--no-write` leaves them). Scenarios: dispatch, latency, logs,
 * fanout (with memory), graph, transfer; none named runs them all.
 */
import "reflect-metadata";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { MikroORM } from "@mikro-orm/postgresql";
import { adminDatabaseUrl } from "../test/support/database.js";
import { management } from "../test/support/broker.js";
import { machine, type ScenarioResult } from "./lib.js";
import { mergeReport, writeReport } from "./report.js";
import { dispatchScenario } from "./scenarios/dispatch.js";
import { fanoutScenario } from "./scenarios/fanout.js";
import { graphScenario } from "./scenarios/graph.js";
import { latencyScenario } from "./scenarios/latency.js";
import { logsScenario } from "./scenarios/logs.js";
import { transferScenario } from "./scenarios/transfer.js";

const SCENARIOS: Record<string, (args: string[]) => Promise<ScenarioResult>> = {
  dispatch: dispatchScenario,
  latency: latencyScenario,
  logs: logsScenario,
  fanout: fanoutScenario,
  graph: graphScenario,
  transfer: transferScenario,
};

async function versions(): Promise<Record<string, string>> {
  const orm = await MikroORM.init({ clientUrl: adminDatabaseUrl(), entities: [], discovery: { warnWhenNoEntities: false } });
  const [pg] = (await orm.em.getConnection().execute(`show server_version`)) as { server_version: string }[];
  await orm.close(true);
  const overview = (await management("GET", "/overview").catch(() => ({}))) as { rabbitmq_version?: string; erlang_version?: string };
  return {
    nproc: execFileSync("nproc").toString().trim(),
    ...machine(),
    PostgreSQL: pg.server_version,
    RabbitMQ: `${overview.rabbitmq_version ?? "?"} (Erlang ${overview.erlang_version ?? "?"})`,
  };
}

const args = process.argv.slice(2);
const named = args.filter((a) => !a.startsWith("--"));
const unknown = named.filter((n) => !SCENARIOS[n]);
if (unknown.length > 0) {
  console.error(`unknown scenario(s) ${unknown.join(", ")}; choose from ${Object.keys(SCENARIOS).join(", ")}`);
  process.exit(2);
}
const chosen = named.length > 0 ? named : Object.keys(SCENARIOS);
const write = !args.includes("--no-write");
const docs = fileURLToPath(new URL("../../docs", import.meta.url));
const machineFacts = write ? await versions() : {};
let failed = false;
for (const name of chosen) {
  try {
    const result = await SCENARIOS[name](args);
    console.log(`\n${result.title}  (load ${result.load.before} → ${result.load.after})`);
    for (const f of result.figures) {
      const base = f.baseline ? `; ${f.baseline.label}: ${f.baseline.value} ${f.unit}; ratio ${(f.value / f.baseline.value).toFixed(2)}` : "";
      console.log(`  ${f.label}: ${f.value} ${f.unit}${base}${f.target ? `  [target ${f.target}: ${f.met ? "met" : "NOT met"}]` : ""}`);
    }
    for (const b of result.breakdown ?? []) console.log(`    ${b.label}: ${b.ms} ms`);
    for (const n of result.notes) console.log(`  ${n}`);
    // After each scenario, so that a long run cut short keeps what it measured.
    if (write) {
      const report = await mergeReport(`${docs}/benchmarks.json`, { machine: machineFacts, command: `npm run bench${args.length ? ` -- ${args.join(" ")}` : ""}`, results: { [name]: result } });
      await writeReport(docs, report);
      console.log(`  wrote docs/benchmarks.md, .svg and .json`);
    }
  } catch (err) {
    failed = true;
    console.error(`${name} failed: ${(err as Error).stack ?? String(err)}`);
  }
}
process.exit(failed ? 1 : 0);
