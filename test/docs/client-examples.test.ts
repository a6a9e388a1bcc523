/**
 * The client examples, run against a real orchestrator and real agents:
 * examples/notebooks/federated-mean.ipynb executed headless by Debian's Jupyter (`jupyter nbconvert
 * --execute`, kernel /usr/bin/python3) submits the federated mean, follows every run's log lines
 * over graphql-ws, prints each node's result and the federated mean, and its plot cell produces a
 * PNG image; examples/typescript/federated-mean.ts (compiled with the project) does the same flow.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { REGISTER_TOOL } from "../support/fixtures.js";
import { gqlOk, TEST_ADMIN_TOKEN } from "../support/graphql.js";
import { runProgram, runScript } from "../support/script.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const NOTEBOOK = join(ROOT, "examples", "notebooks", "federated-mean.ipynb");
/** Where `npm run build` puts the sample tools the example tool files name under /opt/fem/tools. */
const SAMPLE_TOOLS = fileURLToPath(new URL("../../scripts/sample-tools", import.meta.url));
/** Debian's Jupyter; a python3 earlier on the PATH (pyenv) lacks Debian's packages. */
const JUPYTER = process.env.JUPYTER_PATH ?? "/usr/bin/jupyter";
const TYPESCRIPT_EXAMPLE = fileURLToPath(new URL("../../examples/typescript/federated-mean.js", import.meta.url));

interface Graph {
  state: string;
  tasks: { key: string; runs: { node: { id: string }; logLineCount: number }[] }[];
}

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}
interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: Output[];
}

const test = suite("the notebook and TypeScript examples run against a real orchestrator and agents");
let env: TestEnv;
let dir: string;

const joined = (text: string | string[] | undefined) => (Array.isArray(text) ? text.join("") : (text ?? ""));
const stdoutOf = (cell: Cell) => (cell.outputs ?? []).filter((o) => o.output_type === "stream" && o.name === "stdout").map((o) => joined(o.text)).join("");

const RESULTS = ["hospital-a: mean 5.2600 over 5 values", "hospital-b: mean 7.0333 over 3 values", "federated mean: 5.9250 over 8 values"];

/** `lines` are every log line of every run of the workflow, once, each as `<node> <STREAM> <text>`. */
async function assertEveryLineOnce(workflowId: string, lines: string[]): Promise<void> {
  const { workflow } = await gqlOk<{ workflow: Graph }>(env.orchestrator.url, `query($id: ID!) { workflow(id: $id) { state tasks { key runs { node { id } logLineCount } } } }`, { id: workflowId });
  assert.is(workflow.state, "SUCCEEDED");
  for (const line of lines) assert.match(line, /^hospital-[ab]\s+(STDOUT|STDERR|SYSTEM) /);
  const expected: Record<string, number> = {};
  for (const run of workflow.tasks.flatMap((t) => t.runs)) expected[run.node.id] = (expected[run.node.id] ?? 0) + run.logLineCount;
  const seen: Record<string, number> = {};
  for (const line of lines) seen[line.split(" ")[0]!] = (seen[line.split(" ")[0]!] ?? 0) + 1;
  assert.equal(seen, expected, lines.join("\n"));
  assert.ok(lines.some((l) => /^hospital-b\s+STDOUT hospital-b: mean 7\.03\d* over 3 values$/.test(l)), lines.join("\n"));
  assert.ok(lines.some((l) => /^hospital-a\s+STDOUT federated mean over 8 values: 5\.9250$/.test(l)), lines.join("\n"));
}

test.before(async () => {
  env = await createTestEnv();
  dir = await mkdtemp(join(tmpdir(), "fem-notebook-"));
  await env.registerNodes(["hospital-a", "hospital-b"]);
  await Promise.all(["hospital-a", "hospital-b"].map((id) => env.startAgent(id)));
  for (const name of ["local-stats", "fedavg-aggregate"]) {
    const variables = JSON.parse((await readFile(join(ROOT, "examples", `${name}.tool.json`), "utf8")).replaceAll("/opt/fem/tools", SAMPLE_TOOLS)) as Record<string, unknown>;
    await gqlOk(env.orchestrator.url, REGISTER_TOOL, variables);
  }
});

test.after(async () => {
  await env?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("federated-mean.ipynb submits, follows the live log lines, prints the federated mean and plots it", async () => {
  const result = await runProgram(
    JUPYTER,
    ["nbconvert", "--to", "notebook", "--execute", NOTEBOOK, "--output-dir", dir, "--output", "executed", "--ExecutePreprocessor.timeout=180"],
    { PATH: "/usr/bin:/bin", HOME: dir, PYTHONDONTWRITEBYTECODE: "1", FEM_URL: env.orchestrator.url, FEM_TOKEN: TEST_ADMIN_TOKEN, FEM_PROJECT: "test" },
    240_000,
  );
  assert.is(result.code, 0, `${result.stderr}\n${result.stdout}`);
  const cells = (JSON.parse(await readFile(join(dir, "executed.ipynb"), "utf8")) as { cells: Cell[] }).cells.filter((c) => c.cell_type === "code");
  for (const cell of cells) assert.not.ok(cell.outputs?.some((o) => o.output_type === "error"), JSON.stringify(cell.outputs));
  const [signIn, submit, follow, results, plot] = cells;

  assert.match(stdoutOf(signIn!), /^signed in to http:\/\/127\.0\.0\.1:\d+\/graphql as bootstrap-admin \(ADMIN\)\n$/);
  const workflowId = /^workflow (\S+) submitted: 2 tasks\n$/.exec(stdoutOf(submit!))?.[1];
  assert.ok(workflowId, stdoutOf(submit!));

  // Every line of every run, once, with its node in front; then the final state.
  const lines = stdoutOf(follow!).trimEnd().split("\n");
  assert.is(lines.at(-1), "workflow SUCCEEDED");
  await assertEveryLineOnce(workflowId!, lines.slice(0, -1));
  assert.equal(stdoutOf(results!).trimEnd().split("\n"), RESULTS);

  const images = (plot!.outputs ?? []).filter((o) => o.output_type === "display_data" && o.data?.["image/png"]);
  assert.is(images.length, 1, JSON.stringify(plot!.outputs).slice(0, 500));
  const png = Buffer.from(joined(images[0]!.data!["image/png"]), "base64");
  assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), "a PNG");
  const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
  assert.ok(width >= 300 && height >= 150, `${width}×${height}`);
  assert.match(joined(images[0]!.data!["text/plain"]), /Figure size/);
});

test("examples/typescript/federated-mean.ts submits, prints every live log line with its node, then the results", async () => {
  const result = await runScript(TYPESCRIPT_EXAMPLE, [], { FEM_URL: env.orchestrator.url, FEM_TOKEN: TEST_ADMIN_TOKEN, FEM_PROJECT: "test" }, 120_000);
  assert.is(result.code, 0, `${result.stderr}\n${result.stdout}`);
  const lines = result.stdout.trimEnd().split("\n");
  const workflowId = /^workflow (\S+) submitted$/.exec(lines[0]!)?.[1];
  assert.ok(workflowId, lines[0]);
  assert.equal(lines.slice(-4), ["workflow SUCCEEDED", ...RESULTS]);
  await assertEveryLineOnce(workflowId!, lines.slice(1, -4));
});

test.run();
