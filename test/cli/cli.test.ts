/**
 * `fem` run as a user runs it, a subprocess with its own config directory, against a real
 * orchestrator and real agents: sign in, register nodes and tools from YAML, submit and follow
 * workflows, read logs from a seq, cancel, and sum the accounting as CSV.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { addToTestProject, TEST_ADMIN_TOKEN } from "../support/graphql.js";
import { waitUntil } from "../support/wait.js";
import { fem, startFem } from "./fem.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** Where `npm run build` puts the sample tools the example tool files name under /opt/fem/tools. */
const SAMPLE_TOOLS = fileURLToPath(new URL("../../scripts/sample-tools", import.meta.url));

const test = suite("the fem CLI against a real orchestrator and agents");
let env: TestEnv;
let home: string;
/** The environment of a signed-in user: only a config directory (no FEM_URL, no FEM_TOKEN). */
let user: Record<string, string>;
let workflowId: string;

const run = (args: string[], timeoutMs = 30_000) => fem(args, user, timeoutMs);

async function ok(args: string[], timeoutMs = 30_000): Promise<string> {
  const result = await run(args, timeoutMs);
  assert.is(result.code, 0, `fem ${args.join(" ")}: ${result.stderr}\n${result.stdout}`);
  return result.stdout;
}

test.before(async () => {
  env = await createTestEnv();
  home = await mkdtemp(join(tmpdir(), "fem-cli-home-"));
  user = { HOME: home, XDG_CONFIG_HOME: join(home, "config") };
});

test.after(async () => {
  await env?.dispose();
  await rm(home, { recursive: true, force: true });
});

test("login reads the token from standard input, never from argv, and stores it with mode 0600", async () => {
  const login = startFem(["login", "--url", env.orchestrator.url.replace(/\/graphql$/, "")], user);
  // While it waits for the token, its command line is what every process on the machine can read.
  const cmdline = await waitUntil(async () => readFile(`/proc/${login.child.pid}/cmdline`, "utf8"), 5_000, "fem's /proc cmdline");
  assert.ok(cmdline.includes("login") && !cmdline.includes(TEST_ADMIN_TOKEN), cmdline);
  login.input(`${TEST_ADMIN_TOKEN}\n`);
  const result = await login.result(30_000);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, /^signed in to http:\/\/127\.0\.0\.1:\d+\/graphql as bootstrap-admin \(ADMIN\)/);

  const file = join(home, "config", "fem", "config.json");
  assert.is((await stat(file)).mode & 0o777, 0o600);
  assert.is((await stat(join(home, "config", "fem"))).mode & 0o777, 0o700);
  assert.equal(JSON.parse(await readFile(file, "utf8")), { url: env.orchestrator.url, token: TEST_ADMIN_TOKEN });

  const onArgv = await fem(["login", "--url", env.orchestrator.url, "--token", TEST_ADMIN_TOKEN], { HOME: home, XDG_CONFIG_HOME: join(home, "other") });
  assert.is(onArgv.code, 2);
  assert.match(onArgv.stderr, /^fem: fem login takes no --token: .*\/proc\/<pid>\/cmdline.*--token-file/);

  const tokenFile = join(home, "token");
  await writeFile(tokenFile, `${TEST_ADMIN_TOKEN}\n`, { mode: 0o600 });
  const fromFile = await fem(["login", "--url", env.orchestrator.url, "--token-file", tokenFile], { HOME: home, XDG_CONFIG_HOME: join(home, "other") });
  assert.is(fromFile.code, 0, fromFile.stderr);
  const out = await fem(["logout"], { HOME: home, XDG_CONFIG_HOME: join(home, "other") });
  assert.match(out.stdout, /^signed out: removed .*other\/fem\/config\.json/);
});

test("a wrong token is refused in one line that says where the token came from", async () => {
  const wrong = await fem(["nodes"], { ...user, FEM_TOKEN: "fem_pat_wrong-0123456789abcdefghijklmnopqrstuvwxyz" });
  assert.is(wrong.code, 1);
  assert.is(wrong.stdout, "");
  const lines = wrong.stderr.trim().split("\n");
  assert.is(lines.length, 1, wrong.stderr);
  assert.match(lines[0]!, /^fem: UNAUTHENTICATED: the API token is unknown \(the token from FEM_TOKEN was refused; run fem login again\)$/);

  const badLogin = startFem(["login", "--url", env.orchestrator.url], { HOME: home, XDG_CONFIG_HOME: join(home, "bad") });
  badLogin.input("fem_pat_wrong-0123456789abcdefghijklmnopqrstuvwxyz\n");
  const refused = await badLogin.result(30_000);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /^fem: UNAUTHENTICATED: /);
  assert.is(await stat(join(home, "bad", "fem", "config.json")).catch(() => null), null, "a refused token is not stored");
});

test("node register prints the credential once with the agent's start command; nodes lists them once their agents are online", async () => {
  const credentials: Record<string, string> = {};
  for (const id of ["hospital-a", "hospital-b"]) {
    const out = await ok(["node", "register", id, "--capacity", "2", "--label", "kind=hospital"]);
    assert.match(out, new RegExp(`^registered node ${id} \\(capacity 2, labels kind=hospital\\)`));
    const credential = /credential \(shown only now[^)]*\): (fem_node_\S+)/.exec(out)?.[1];
    assert.ok(credential, out);
    credentials[id] = credential!;
    assert.match(out, new RegExp(`FEM_NODE_ID=${id} .*\\n.*FEM_NODE_CREDENTIAL_FILE=.*\\n.*fem-agent`));
  }
  const again = await run(["node", "register", "hospital-a"]);
  assert.is(again.code, 1);
  assert.match(again.stderr, /^fem: CONFLICT: .*hospital-a/);
  await addToTestProject(env.orchestrator.url, ["hospital-a", "hospital-b"]);
  await Promise.all(["hospital-a", "hospital-b"].map((id) => env.startAgent(id, { credential: credentials[id] })));

  const online = await waitUntil(
    async () => {
      const nodes = JSON.parse(await ok(["nodes", "--json"])) as { id: string; connectivity: string; capacity: number; activeRuns: number }[];
      return nodes.every((n) => n.connectivity === "ONLINE") ? nodes : undefined;
    },
    20_000,
    "both agents online",
    250,
  );
  assert.equal(online.map((n) => [n.id, n.capacity, n.activeRuns]), [["hospital-a", 2, 0], ["hospital-b", 2, 0]]);
  const table = (await ok(["nodes"])).split("\n");
  assert.match(table[0]!, /^NODE\s+CONNECTIVITY\s+ADMIN STATE\s+RUNS\s+LAST HEARTBEAT/);
  assert.match(table[1]!, /^hospital-a\s+ONLINE\s+ACTIVE\s+0\/2\s+\d+ s ago/);

  const watching = startFem(["nodes", "--watch", "--json"], user);
  watching.input("");
  // The list first, then a line per change: the agents heartbeat every 300 ms.
  await waitUntil(() => watching.stdout().split("\n").filter((l) => l.startsWith('{"id":"hospital-a"')).length >= 3, 10_000, "hospital-a's heartbeats in nodes --watch");
  watching.child.kill("SIGINT");
  const watched = await watching.result(10_000);
  assert.is(watched.code, 0, watched.stderr);
  for (const line of watched.stdout.trim().split("\n")) assert.ok(["hospital-a", "hospital-b"].includes((JSON.parse(line) as { id: string }).id), line);

  assert.match(await ok(["node", "drain", "hospital-b"]), /^node hospital-b is DRAINING/);
  assert.match(await ok(["node", "enable", "hospital-b"]), /^node hospital-b is ACTIVE/);
});

test("node remove refuses an ACTIVE node and removes a DISABLED one", async () => {
  await ok(["node", "register", "cli-spare"]);
  const refused = await run(["node", "remove", "cli-spare"]);
  assert.is.not(refused.code, 0);
  assert.match(refused.stderr, /CONFLICT: node cli-spare is ACTIVE: set it DISABLED/);
  await ok(["node", "disable", "cli-spare"]);
  assert.match(await ok(["node", "remove", "cli-spare"]), /^removed node cli-spare at \S+: its broker user and queues are deleted/);
  assert.not.match(await ok(["nodes"]), /cli-spare/);
});

test("tools register reads YAML files; tools ls lists them", async () => {
  for (const name of ["local-stats", "fedavg-aggregate"]) {
    const file = join(home, `${name}.tool.yaml`);
    await writeFile(file, (await readFile(join(ROOT, "examples", "cli", `${name}.tool.yaml`), "utf8")).replaceAll("/opt/fem/tools", SAMPLE_TOOLS));
    assert.match(await ok(["tools", "register", file]), new RegExp(`^registered tool ${name}@1\\.0\\.0 \\(sha256:[0-9a-f]{64}\\)`));
  }
  const failing = join(home, "fails.tool.yaml");
  await writeFile(failing, ['name: fails', 'version: "1"', "executable: /bin/sh", "args:", "  - { id: c, type: STRING, position: 0, default: -c }", "  - { id: script, type: STRING, position: 1, default: 'echo about to fail; sleep \"$1\"; exit 3' }", "  - { id: zero, type: STRING, position: 2, default: sh }", "  - { id: seconds, type: STRING, position: 3, default: '0' }", ""].join("\n"));
  await ok(["tools", "register", failing]);
  const tools = JSON.parse(await ok(["tools", "ls", "--json"])) as { ref: string }[];
  assert.equal(tools.map((t) => t.ref), ["fails@1", "fedavg-aggregate@1.0.0", "local-stats@1.0.0"]);
  assert.match((await ok(["tools", "ls"])).split("\n")[1]!, /^fails@1\s+process\s+\/bin\/sh/);
});

test("submit --follow streams every run's states and lines with its node, and exits 0 when the workflow succeeds", async () => {
  const result = await run(["submit", join(ROOT, "examples", "cli", "federated-mean.workflow.yaml"), "--project", "test", "--follow"], 60_000);
  assert.is(result.code, 0, `${result.stderr}\n${result.stdout}`);
  workflowId = /submitted workflow (\S+);/.exec(result.stderr)![1]!;
  const lines = result.stdout.split("\n");
  for (const state of ["QUEUED", "RUNNING", "SUCCEEDED"]) assert.ok(lines.some((l) => /^hospital-a stats\s+▸ /.test(l) && l.includes(state)), `no ${state} line for hospital-a stats:\n${result.stdout}`);
  assert.ok(lines.some((l) => /^hospital-b stats\s+│ hospital-b: mean 7\.03\d* over 3 values$/.test(l)), result.stdout);
  assert.ok(lines.some((l) => /^hospital-a mean\s+│ federated mean over 8 values: 5\.9250$/.test(l)), result.stdout);
  assert.ok(lines.some((l) => /▸ PENDING\s+\[0\/3 runs done\]$/.test(l)), result.stdout);
  assert.is(lines.filter(Boolean).at(-1), `workflow ${workflowId} SUCCEEDED  [3/3 runs done]`);
  // Every line of every run, once, in seq order per run.
  const status = JSON.parse(await ok(["status", workflowId, "--json"])) as { state: string; tasks: { key: string; runs: { logLineCount: number; node: { id: string } }[] }[] };
  assert.is(status.state, "SUCCEEDED");
  for (const task of status.tasks) {
    for (const r of task.runs) {
      const prefix = new RegExp(`^${r.node.id} ${task.key}\\s+│ `);
      assert.is(lines.filter((l) => prefix.test(l)).length, r.logLineCount, `${r.node.id} ${task.key}`);
    }
  }
  assert.match(await ok(["status", workflowId]), new RegExp(`^workflow ${workflowId}  federated mean  SUCCEEDED  \\[3/3 runs done\\]`));
});

test("submit --follow exits non-zero and says which run failed and why", async () => {
  const file = join(home, "fails.workflow.yaml");
  await writeFile(file, ["tasks:", "  - key: boom", "    tool: fails@1", "    nodes: [hospital-a]", ""].join("\n"));
  const result = await run(["submit", file, "--follow"], 60_000);
  assert.is(result.code, 1, result.stdout);
  assert.match(result.stdout, /hospital-a boom\s+│ about to fail/);
  assert.match(result.stdout, /hospital-a boom\s+▸ FAILED \(EXIT_CODE: exited with code 3\)/);
  const errors = result.stderr.trim().split("\n");
  assert.match(errors.at(-1)!, /^fem: workflow \S+ FAILED: task boom on hospital-a \(attempt 1\) FAILED \(EXIT_CODE: exited with code 3\)$/);
});

test("logs --after-seq N resumes exactly after N, stored or followed", async () => {
  const status = JSON.parse(await ok(["status", workflowId, "--json"])) as { tasks: { key: string; runs: { id: string; logLineCount: number }[] }[] };
  const mean = status.tasks.find((t) => t.key === "mean")!.runs[0]!;
  assert.ok(mean.logLineCount >= 4, String(mean.logLineCount));
  const all = (await ok(["logs", mean.id, "--json"])).trim().split("\n").map((l) => JSON.parse(l) as { seq: number; stream: string; text: string });
  assert.equal(all.map((l) => l.seq), Array.from({ length: mean.logLineCount }, (_, i) => i + 1));
  const rest = (await ok(["logs", mean.id, "--after-seq", "2"])).trim().split("\n");
  assert.equal(rest, all.slice(2).map((l) => `${l.seq} ${l.stream} ${l.text}`));
  const followed = await run(["logs", mean.id, "--follow", "--after-seq", "2"]);
  assert.is(followed.code, 0, followed.stderr);
  assert.equal(followed.stdout.trim().split("\n"), rest);
  assert.match(followed.stderr, /ended SUCCEEDED/);
});

test("logs TASK interleaves the lines of every run of a task, each with its node in front, stored or followed", async () => {
  const status = JSON.parse(await ok(["status", workflowId, "--json"])) as { tasks: { id: string; key: string; runs: { id: string; logLineCount: number; node: { id: string } }[] }[] };
  const stats = status.tasks.find((t) => t.key === "stats")!;
  const counts = Object.fromEntries(stats.runs.map((r) => [r.node.id, r.logLineCount]));
  const perNode = (lines: string[]) => {
    const seqs: Record<string, number[]> = {};
    for (const line of lines) {
      const match = /^(hospital-[ab])\s+(\d+) (STDOUT|STDERR|SYSTEM) /.exec(line);
      assert.ok(match, line);
      (seqs[match![1]!] ??= []).push(Number(match![2]));
    }
    return seqs;
  };
  const expected = Object.fromEntries(Object.entries(counts).map(([node, n]) => [node, Array.from({ length: n }, (_, i) => i + 1)]));
  const stored = (await ok(["logs", stats.id])).trim().split("\n");
  assert.equal(perNode(stored), expected);
  assert.ok(stored.some((l) => /^hospital-b\s+\d+ STDOUT hospital-b: mean 7\.03\d* over 3 values$/.test(l)), stored.join("\n"));
  const followed = await run(["logs", stats.id, "--follow"]);
  assert.is(followed.code, 0, followed.stderr);
  assert.equal(perNode(followed.stdout.trim().split("\n")), expected);
  assert.match(followed.stderr, /task stats ended SUCCEEDED/);

  const json = (await ok(["logs", stats.id, "--json"])).trim().split("\n").map((l) => JSON.parse(l) as { runId: string; node: string; seq: number; at: string });
  // Interleaved by the time each line was written, in the same order as the text.
  assert.equal(json.map((l) => `${l.node} ${l.seq}`), stored.map((l) => l.split(/\s+/).slice(0, 2).join(" ")));
  for (let i = 1; i < json.length; i += 1) assert.ok(Date.parse(json[i - 1]!.at) <= Date.parse(json[i]!.at), `${json[i - 1]!.at} > ${json[i]!.at}`);
  assert.equal(new Set(json.map((l) => `${l.node} ${l.runId}`)), new Set(stats.runs.map((r) => `${r.node.id} ${r.id}`)));

  const coloured = await fem(["logs", stats.id], { ...user, FORCE_COLOR: "1" });
  const colourOf = (node: string) => new RegExp(`^(\u001b\\[\\d+m)${node}`, "m").exec(coloured.stdout)?.[1];
  assert.ok(colourOf("hospital-a") && colourOf("hospital-b") && colourOf("hospital-a") !== colourOf("hospital-b"), coloured.stdout);

  const afterSeq = await run(["logs", stats.id, "--after-seq", "2"]);
  assert.is(afterSeq.code, 2);
  assert.match(afterSeq.stderr, /^fem: --after-seq takes a run's id: each run of task stats counts its own seq/);
});

test("Ctrl-C stops following without cancelling and says how to cancel; cancel does", async () => {
  const file = join(home, "slow.workflow.yaml");
  await writeFile(file, ["tasks:", "  - key: slow", "    tool: fails@1", "    nodes: [hospital-b]", "    params: { seconds: '300' }", ""].join("\n"));
  const following = startFem(["submit", file, "--follow"], user);
  following.input("");
  await waitUntil(() => following.stdout().includes("about to fail"), 30_000, "the slow run's first line");
  following.child.kill("SIGINT");
  const result = await following.result(10_000);
  assert.is(result.code, 130);
  const id = /submitted workflow (\S+);/.exec(result.stderr)![1]!;
  assert.match(result.stderr, new RegExp(`stopped following; workflow ${id} goes on\\. Cancel it with: fem cancel ${id}`));
  const slow = JSON.parse(await ok(["status", id, "--json"])) as { state: string; tasks: { id: string }[] };
  assert.is(slow.state, "RUNNING");
  // fem logs TASK --follow on a live task: the stored lines, then it follows until the task ends.
  const tail = startFem(["logs", slow.tasks[0]!.id, "--follow"], user);
  tail.input("");
  await waitUntil(() => /^hospital-b\s+\d+ STDOUT about to fail$/m.test(tail.stdout()), 20_000, "fem logs TASK --follow shows the stored line");
  assert.match(await ok(["cancel", id]), new RegExp(`^workflow ${id} is CANCELLED`));
  const tailed = await tail.result(30_000);
  assert.is(tailed.code, 1, tailed.stderr);
  assert.match(tailed.stderr, /task slow ended CANCELLED/);
  const cancelled = JSON.parse(await ok(["status", id, "--json"])) as { tasks: { runs: { logLineCount: number }[] }[] };
  const tailedLines = tailed.stdout.trim().split("\n");
  assert.equal(tailedLines.map((l) => Number(/^hospital-b\s+(\d+) /.exec(l)?.[1])), Array.from({ length: cancelled.tasks[0]!.runs[0]!.logLineCount }, (_, i) => i + 1), tailed.stdout);
});

test("accounting --csv prints one parsable row per group", async () => {
  const result = await ok(["accounting", "--by", "node,tool", "--csv"]);
  const [header, ...rows] = result.trim().split("\n").map((l) => l.split(","));
  assert.equal(header, ["node", "tool", "runs", "succeeded", "failed", "cancelled", "wallMs", "cpuUserMs", "cpuSystemMs", "maxPeakRssBytes", "logBytes", "outputBytes"]);
  const byKey = Object.fromEntries(rows.map((r) => [`${r[0]} ${r[1]}`, r]));
  assert.equal(Object.keys(byKey).sort(), ["hospital-a fails@1", "hospital-a fedavg-aggregate@1.0.0", "hospital-a local-stats@1.0.0", "hospital-b fails@1", "hospital-b local-stats@1.0.0"]);
  assert.equal(byKey["hospital-a fails@1"]!.slice(2, 6), ["1", "0", "1", "0"]);
  for (const row of rows) for (const cell of row.slice(2)) assert.ok(Number.isFinite(Number(cell)), row.join(","));
  const json = JSON.parse(await ok(["accounting", "--by", "day", "--json"])) as { day: string; runs: number }[];
  assert.is(json.length, 1);
  assert.is(json[0]!.runs, 5);
});

test.run();
