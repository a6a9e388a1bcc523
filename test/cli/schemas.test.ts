/**
 * The workflow and tool file formats: the JSON Schemas under schema/ accept every example, have
 * exactly the fields of the GraphQL inputs they describe (so the two cannot drift apart), and a
 * mistake in a file is reported by `fem` with its line and field before anything is sent.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { buildSchema, getNullableType, isEnumType, isInputObjectType, isListType, isNonNullType, type GraphQLInputObjectType, type GraphQLInputType } from "graphql";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parse as parseYaml } from "yaml";
import { fem } from "./fem.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const test = suite("the workflow and tool file schemas");

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: string[];
  $ref?: string;
  definitions?: Record<string, JsonSchema>;
}

const load = async (name: string) => JSON.parse(await readFile(join(ROOT, "schema", name), "utf8")) as JsonSchema;
let workflowSchema: JsonSchema;
let toolSchema: JsonSchema;
let tmp: string;

test.before(async () => {
  workflowSchema = await load("workflow.schema.json");
  toolSchema = await load("tool.schema.json");
  tmp = await mkdtemp(join(tmpdir(), "fem-cli-schemas-"));
});

test.after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test("accept the examples: examples/cli/*.yaml and the inputs of the JSON examples", async () => {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  const validate = { workflow: ajv.compile(workflowSchema), tool: ajv.compile(toolSchema) };
  const samples: [string, "workflow" | "tool", unknown][] = [];
  for (const name of await readdir(join(ROOT, "examples", "cli"))) {
    samples.push([name, name.endsWith(".workflow.yaml") ? "workflow" : "tool", parseYaml(await readFile(join(ROOT, "examples", "cli", name), "utf8"))]);
  }
  for (const name of await readdir(join(ROOT, "examples"))) {
    if (!name.endsWith(".tool.json") && name !== "submit-workflow.json") continue;
    samples.push([name, name.endsWith(".tool.json") ? "tool" : "workflow", JSON.parse(await readFile(join(ROOT, "examples", name), "utf8")).input]);
  }
  assert.ok(samples.filter(([, kind]) => kind === "workflow").length >= 2 && samples.filter(([, kind]) => kind === "tool").length >= 4, JSON.stringify(samples.map((s) => s[0])));
  for (const [name, kind, value] of samples) assert.ok(validate[kind](value), `${name}: ${JSON.stringify(validate[kind].errors)}`);
});

/** The schema a `$ref` or a property points at. */
function resolve(root: JsonSchema, schema: JsonSchema): JsonSchema {
  return schema.$ref ? root.definitions![schema.$ref.replace("#/definitions/", "")]! : schema;
}

/** Asserts the object schema has the input type's fields and required fields, then recurses into nested inputs and enums. */
function assertMatches(root: JsonSchema, schema: JsonSchema, type: GraphQLInputObjectType, where: string, seen = new Set<string>()): void {
  const fields = type.getFields();
  assert.equal(Object.keys(schema.properties ?? {}).sort(), Object.keys(fields).sort(), `${where} (${type.name}): fields differ`);
  const required = Object.values(fields).filter((f) => isNonNullType(f.type) && f.defaultValue === undefined).map((f) => f.name).sort();
  assert.equal([...(schema.required ?? [])].sort(), required, `${where} (${type.name}): required fields differ`);
  for (const field of Object.values(fields)) {
    let fieldType: GraphQLInputType = getNullableType(field.type);
    let property = resolve(root, schema.properties![field.name]!);
    if (isListType(fieldType)) {
      fieldType = getNullableType(fieldType.ofType);
      property = resolve(root, property.items!);
    }
    if (isEnumType(fieldType)) {
      assert.equal([...(property.enum ?? [])].sort(), fieldType.getValues().map((v) => v.name).sort(), `${where}.${field.name}: enum values differ`);
    } else if (isInputObjectType(fieldType) && !seen.has(`${where}.${field.name}`)) {
      assertMatches(root, property, fieldType, `${where}.${field.name}`, new Set([...seen, `${where}.${field.name}`]));
    }
  }
}

test("docs/cli.md shows every file of examples/cli/ as it is", async () => {
  const doc = await readFile(join(ROOT, "docs", "cli.md"), "utf8");
  for (const name of await readdir(join(ROOT, "examples", "cli"))) {
    const content = (await readFile(join(ROOT, "examples", "cli", name), "utf8")).trim();
    assert.ok(doc.includes(`\`examples/cli/${name}\`:\n\n\`\`\`yaml\n${content}\n\`\`\``), `docs/cli.md does not show examples/cli/${name} as it is`);
  }
});

test("have exactly the fields, required fields and enum values of the GraphQL inputs (schema/schema.graphql)", async () => {
  const sdl = buildSchema(await readFile(join(ROOT, "schema", "schema.graphql"), "utf8"));
  const input = (name: string) => sdl.getType(name) as GraphQLInputObjectType;
  assertMatches(workflowSchema, workflowSchema, input("SubmitWorkflowInput"), "workflow");
  assertMatches(toolSchema, toolSchema, input("RegisterToolInput"), "tool");
});

test("fem names the file, line, column and field of each mistake, and sends nothing", async () => {
  const file = join(tmp, "workflow.yaml");
  await writeFile(file, ["name: demo", "tasks:", "  - key: stats", "    tool: local-stats@1.0.0", "    retry:", "      maxAttempts: many", "  - key: mean", "    tol: fedavg@1", ""].join("\n"));
  // No orchestrator listens there: the file is refused before any request.
  const env = { FEM_URL: "http://127.0.0.1:9/graphql", FEM_TOKEN: "fem_pat_unused", HOME: tmp };
  const bad = await fem(["submit", file], env);
  assert.is(bad.code, 2);
  assert.is(bad.stdout, "");
  assert.equal(bad.stderr.trim().split("\n"), [
    `fem: ${file}:6:20: tasks[0].retry.maxAttempts: must be an integer`,
    `fem: ${file}:7:5: tasks[1].tool: is required`,
    `fem: ${file}:8:5: tasks[1].tol: is not a field of this object`,
  ]);

  const tool = join(tmp, "tool.yaml");
  await writeFile(tool, ["name: x", "version: 1.0", "executable: node", "args:", "  - { id: a, type: STRNG }", ""].join("\n"));
  const badTool = await fem(["tools", "register", tool], env);
  assert.is(badTool.code, 2);
  assert.equal(badTool.stderr.trim().split("\n"), [
    `fem: ${tool}:2:10: version: must be a string (YAML reads 1 as a number: quote it)`,
    `fem: ${tool}:5:20: args[0].type: must be one of STRING, INT, FLOAT, BOOLEAN`,
  ]);

  const broken = join(tmp, "broken.yaml");
  await writeFile(broken, "tasks:\n  - key: [a\n");
  const unparsable = await fem(["submit", broken], env);
  assert.is(unparsable.code, 2);
  assert.match(unparsable.stderr, new RegExp(`^fem: ${broken}:\\d+:\\d+: `));
});

test.run();
