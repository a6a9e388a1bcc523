import { suite } from "uvu";
import * as assert from "uvu/assert";
import { digestProblem, parsePolicy, policyProblem } from "../../src/agent/policy.js";
import { argvTemplateProblem, toolDefinition, toolDigest, type ToolDefinitionSource } from "../../src/shared/index.js";
import { buildArgv } from "../../src/tools/command.js";
import { ArgType, type ToolArg } from "../../src/tools/tool.entity.js";
import { dispatchOf } from "../support/dispatches.js";

const test = suite("tool digests and pins");

const tool: ToolDefinitionSource = {
  executable: "/usr/bin/python3",
  launcher: "process",
  image: null,
  args: [
    { id: "script", type: "STRING", position: 0, default: "stats.py" },
    { id: "cohort", type: "STRING", prefix: "--cohort", required: true },
    { id: "n", type: "INT", prefix: "--n=", separate: false, default: 10 },
    { id: "ratio", type: "FLOAT", prefix: "--ratio" },
    { id: "verbose", type: "BOOLEAN", prefix: "-v" },
  ],
  env: { DB: "x", A: "y" },
  resultFile: "result.json",
  outputs: ["out/*.csv"],
};

test("a digest is sha256: and 64 hex digits, and stable under key order", () => {
  const digest = toolDigest(tool);
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  const reordered = JSON.parse(JSON.stringify(tool, (_k, v: unknown) => (v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v)));
  assert.is(toolDigest(reordered), digest);
  assert.is(toolDigest({ ...tool, env: { A: "y", DB: "x" } }), digest, "env order does not matter");
  assert.is(toolDigest(toolDefinition(tool)), digest, "the definition gives the digest of the tool it came from");
});

test("a digest ignores env values but not env names", () => {
  assert.is(toolDigest({ ...tool, env: { DB: "other", A: "" } }), toolDigest(tool));
  assert.is.not(toolDigest({ ...tool, env: { DB: "x" } }), toolDigest(tool));
});

test("a digest changes with every field of the definition", () => {
  const args = tool.args!;
  const variants: ToolDefinitionSource[] = [
    { ...tool, executable: "/bin/sh" },
    { ...tool, launcher: "docker", image: "python:3.12" },
    { ...tool, image: "python:3.12" },
    { ...tool, resultFile: "other.json" },
    { ...tool, outputs: [] },
    { ...tool, args: args.slice(1) },
    { ...tool, args: [...args].reverse() },
    ...(["default", "position", "prefix", "separate", "required", "allowDash"] as const).map((field) => ({
      ...tool,
      args: [{ ...args[0], [field]: field === "default" ? "evil.py" : field === "position" ? 7 : field === "prefix" ? "--x" : !(toolDefinition(tool).args[0][field] as boolean) }, ...args.slice(1)],
    })),
    { ...tool, args: [{ ...args[0], type: "INT" as const, default: 1 }, ...args.slice(1)] },
    { ...tool, args: [{ ...args[0], id: "other" }, ...args.slice(1)] },
  ];
  const digests = new Set(variants.map((v) => toolDigest(v)));
  assert.is(digests.size, variants.length, "every variant has its own digest");
  assert.not.ok(digests.has(toolDigest(tool)));
});

test("a stored tool without allowDash has the digest of one that says false", () => {
  const [first, ...rest] = tool.args!;
  assert.is(toolDigest({ ...tool, args: [{ ...first, allowDash: false }, ...rest] }), toolDigest(tool));
});

const entityArgs = toolDefinition(tool).args as unknown as ToolArg[];
const argvOf = (params: Record<string, unknown>): string[] => buildArgv(tool.executable, entityArgs, params, "params");

test("every argv the orchestrator builds follows the template", () => {
  const definition = toolDefinition(tool);
  for (const params of [{ cohort: "a" }, { cohort: "b", n: 3, ratio: 0.5, verbose: true }, { cohort: "c", verbose: false, script: "x.py" }, { cohort: "d", ratio: 2 }]) {
    assert.is(argvTemplateProblem(definition, argvOf(params)), null, JSON.stringify(params));
  }
});

test("an argv off the template is refused: executable, order, prefix, type, missing or extra items, a dash", () => {
  const definition = toolDefinition(tool);
  const good = argvOf({ cohort: "a", ratio: 0.5 });
  assert.equal(good, ["/usr/bin/python3", "stats.py", "--cohort", "a", "--n=10", "--ratio", "0.5"]);
  const bad: string[][] = [
    ["/bin/sh", ...good.slice(1)],
    [good[0], "--cohort", "a", "stats.py", "--n=10"],
    [good[0], "stats.py", "--cohort", "a", "--n=ten"],
    [good[0], "stats.py", "--cohort", "a", "--n=10", "--ratio", "half"],
    [good[0], "stats.py", "--n=10"],
    [good[0], "stats.py", "--cohort", "a", "--n=10", "-c", "import os"],
    [good[0], "stats.py", "--cohort", "--evil", "--n=10"],
    [good[0], "stats.py", "--cohort", "a"],
  ];
  for (const argv of bad) assert.type(argvTemplateProblem(definition, argv), "string", JSON.stringify(argv));
  assert.match(argvTemplateProblem(definition, bad[0]) ?? "", /not the tool's executable/);
});

const dispatch = dispatchOf(tool, { argv: argvOf({ cohort: "a" }), env: { DB: "x", A: "y" }, timeoutSeconds: 60, resultFile: "result.json", outputs: ["out/*.csv"] });

test("a definition changed under its old digest is refused", () => {
  assert.is(digestProblem(dispatch), null);
  const tampered = { ...dispatch, tool: { ...dispatch.tool, definition: { ...dispatch.tool.definition!, executable: "/bin/sh" } } };
  assert.match(digestProblem(tampered) ?? "", /does not match its digest sha256:/);
  const old = { ...dispatch, tool: { name: "stats", version: "1" } };
  assert.is(digestProblem(old), null, "a dispatch queued before digests existed passes without a policy");
});

const policy = (content: unknown) => {
  const parsed = parsePolicy(content);
  if (!parsed.ok) throw new Error(parsed.problems.join("; "));
  return parsed.policy;
};

test("a policy runs a pinned digest, by name@version or by name with a list", () => {
  const digest = toolDigest(tool);
  assert.is(policyProblem(policy({ tools: [{ name: "stats", version: "1", digest }] }), dispatch), null);
  assert.is(policyProblem(policy({ tools: [{ name: "stats", digests: [`sha256:${"0".repeat(64)}`, digest] }] }), dispatch), null);
  assert.is(policyProblem(policy({ allow: "any" }), dispatch), null);
  assert.match(policyProblem(policy({ tools: [{ name: "stats", version: "2", digest }] }), dispatch) ?? "", /not pinned/);
  assert.match(policyProblem(policy({ tools: [{ name: "stats", digest: `sha256:${"0".repeat(64)}` }] }), dispatch) ?? "", new RegExp(`stats@1 with digest ${digest} is not pinned`));
  assert.match(policyProblem(policy({ tools: [] }), dispatch) ?? "", /not pinned/, "an empty policy allows nothing");
  assert.match(policyProblem(policy({ allow: "any" }), { ...dispatch, tool: { name: "stats", version: "1" } }) ?? "", /without a digest/);
  const offTemplate = { ...dispatch, argv: [...dispatch.argv, "--extra"] };
  assert.match(policyProblem(policy({ allow: "any" }), offTemplate) ?? "", /command template/);
  assert.match(policyProblem(policy({ allow: "any" }), { ...dispatch, env: { DB: "x", A: "y", LD_PRELOAD: "/tmp/x.so" } }) ?? "", /environment names/);
});

test("a policy file's problems are all listed", () => {
  const parsed = parsePolicy({ allow: "all", tools: [{ name: "a" }, { name: "b", digest: "sha256:xyz" }, { name: "c", digest: `sha256:${"a".repeat(64)}`, extra: 1 }], more: true });
  assert.is(parsed.ok, false);
  const problems = parsed.ok ? [] : parsed.problems;
  assert.ok(problems.length >= 5, problems.join("\n"));
  assert.match(problems.join("\n"), /allow/);
  assert.match(problems.join("\n"), /tools\.0: names no digest/);
  assert.match(problems.join("\n"), /tools\.1\.digest: "sha256:xyz" is not sha256:/);
  assert.match(problems.join("\n"), /extra/);
  assert.match(problems.join("\n"), /more/);
});

test.run();
