import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { datasetEnv, datasetInfos, datasetsProblem, runDatasets } from "../../src/agent/datasets.js";
import { parsePolicy, readPolicy, type NodeDataset } from "../../src/agent/policy.js";
import { heartbeatEventSchema, signedBytes } from "../../src/messaging/contracts.js";
import { dispatchOf } from "../support/dispatches.js";

const test = suite("datasets on the node: the policy file, the dispatch check, what a run gets");
let dir: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "fem-datasets-unit-"));
});
test.after(async () => rm(dir, { recursive: true, force: true }));

const tool = { executable: "/usr/bin/stats", launcher: "sandbox", image: null, args: [], env: {}, resultFile: null, outputs: [] };
const dispatch = (datasets?: string[]) => ({ ...dispatchOf(tool, { argv: ["/usr/bin/stats"], env: {}, timeoutSeconds: null, resultFile: null, outputs: [] }), datasets });
const NODE_DATASETS: NodeDataset[] = [
  { name: "cohort-2024", path: "/srv/data/cohort-2024", description: "the 2024 cohort", labels: { kind: "cohort" } },
  { name: "atlas", path: "/srv/atlas", description: null, labels: {} },
];

test("a policy names datasets by name with an absolute path, an optional description and labels", () => {
  const parsed = parsePolicy({ tools: [], datasets: { "cohort-2024": { path: "/srv/data/cohort-2024/", description: "the 2024 cohort", labels: { kind: "cohort" } }, atlas: { path: "/srv/atlas" } } });
  assert.ok(parsed.ok);
  assert.equal(parsed.ok && parsed.policy.datasets, NODE_DATASETS);
});

test("a dataset with a bad name, a relative path, a path under /usr or an unknown field is refused, each problem named", () => {
  const parsed = parsePolicy({ datasets: { "Bad_Name": { path: "/srv/x" }, rel: { path: "data/x" }, usr: { path: "/usr/share/x" }, extra: { path: "/srv/y", owner: "me" } } });
  assert.is(parsed.ok, false);
  const problems = parsed.ok ? "" : parsed.problems.join("\n");
  assert.match(problems, /dataset name "Bad_Name" must match/);
  assert.match(problems, /datasets\.rel\.path: path "data\/x" is not absolute/);
  assert.match(problems, /datasets\.usr\.path: path "\/usr\/share\/x" is under \/usr/);
  assert.match(problems, /owner/);
});

test("the agent refuses to start with a dataset whose path does not exist, naming it", async () => {
  await mkdir(join(dir, "present"));
  const file = join(dir, "policy.yaml");
  await writeFile(file, `allow: any\ndatasets:\n  present: { path: ${join(dir, "present")} }\n  gone: { path: ${join(dir, "gone")} }\n`);
  await readPolicy(file).then(
    () => assert.unreachable("a missing dataset path is refused"),
    (err: Error) => {
      assert.match(err.message, `datasets.gone: path ${join(dir, "gone")} does not exist`);
      assert.not.match(err.message, "present");
      assert.not.match(err.message, "\n");
    },
  );
});

test("the heartbeat reports names, descriptions and labels, never paths", () => {
  const infos = datasetInfos(NODE_DATASETS);
  assert.equal(infos, [
    { name: "cohort-2024", description: "the 2024 cohort", labels: { kind: "cohort" } },
    { name: "atlas", description: null, labels: {} },
  ]);
  assert.not.match(JSON.stringify(infos), "/srv");
  const beat = { type: "node.heartbeat", v: 1, nodeId: "site-a", at: new Date().toISOString(), capacity: 1, launchers: [], activeRuns: [], health: { cpus: 1, loadAvg1: 0, memoryTotalBytes: 1, memoryFreeBytes: 1, diskFreeBytes: null, gpus: 0, agentVersion: "x" } };
  assert.equal(heartbeatEventSchema.parse({ ...beat, datasets: infos }).datasets, infos);
  assert.is(heartbeatEventSchema.parse({ ...beat, datasets: [{ name: "../x" }] }).datasets, undefined, "an unreadable list is dropped, not the heartbeat");
});

test("a dispatch naming a dataset the node lacks is refused naming it; one naming none or only the node's passes", () => {
  assert.is(datasetsProblem(dispatch(), NODE_DATASETS, "site-a"), null);
  assert.is(datasetsProblem(dispatch(["atlas", "cohort-2024"]), NODE_DATASETS, "site-a"), null);
  assert.is(datasetsProblem(dispatch(["atlas", "other"]), NODE_DATASETS, "site-a"), `dataset "other" is not on node site-a (FEM_POLICY_FILE datasets)`);
  assert.match(datasetsProblem(dispatch(["x", "y"]), [], "site-a") ?? "", /datasets "x", "y" are not on node site-a/);
});

test("a run gets only the datasets its dispatch names, with their paths, and FEM_DATASET_<NAME> names where it sees each", () => {
  const datasets = runDatasets(dispatch(["cohort-2024"]), NODE_DATASETS);
  assert.equal(datasets, [{ name: "cohort-2024", path: "/srv/data/cohort-2024" }]);
  assert.equal(runDatasets(dispatch(), NODE_DATASETS), []);
  assert.equal(datasetEnv(datasets, (d) => `/data/${d.name}`), { FEM_DATASET_COHORT_2024: "/data/cohort-2024" });
});

test("the signature covers the datasets a dispatch names, and a dispatch naming none signs as before", () => {
  const without = dispatch();
  assert.not.match(signedBytes(without).toString(), "datasets");
  assert.match(signedBytes(dispatch(["atlas"])).toString(), /"datasets":\["atlas"\]/);
  assert.is.not(signedBytes(dispatch(["atlas"])).toString(), signedBytes(dispatch(["cohort-2024"])).toString());
});

test.run();
