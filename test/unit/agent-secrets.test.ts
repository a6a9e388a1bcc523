import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parsePolicy, policyProblem } from "../../src/agent/policy.js";
import { buildRunEnv, parseSecrets, readSecrets, secretsProblem } from "../../src/agent/secrets.js";
import { secretRefProblem, toolDefinition, toolDigest, type ToolDefinitionSource } from "../../src/shared/index.js";
import { dispatchOf } from "../support/dispatches.js";

const test = suite("node-local secrets");
const VALUE = "s3cr3t-value-that-must-not-leak";
let dir: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "fem-secrets-unit-"));
});
test.after(async () => rm(dir, { recursive: true, force: true }));

async function secretsFile(name: string, text: string, mode: number): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  await chmod(file, mode);
  return file;
}

async function failure(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "",
    (err: unknown) => (err as Error).message,
  );
}

test("a secrets file in YAML or JSON, mode 0600 or 0400, gives NAME: value", async () => {
  const yaml = await readSecrets(await secretsFile("s.yaml", `# database\nDB_PASSWORD: "${VALUE}"\nAPI_KEY: abc\n`, 0o600));
  assert.equal([...yaml], [["DB_PASSWORD", VALUE], ["API_KEY", "abc"]]);
  const json = await readSecrets(await secretsFile("s.json", JSON.stringify({ DB_PASSWORD: VALUE }), 0o400));
  assert.is(json.get("DB_PASSWORD"), VALUE);
  assert.is((await readSecrets(await secretsFile("empty.yaml", "", 0o600))).size, 0);
});

test("a secrets file open to group or others is refused in one line, without its content", async () => {
  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o700 | 0o020]) {
    const file = await secretsFile(`open-${mode.toString(8)}.yaml`, `DB_PASSWORD: ${VALUE}\n`, mode);
    const message = await failure(readSecrets(file));
    assert.match(message, new RegExp(`^FEM_SECRETS_FILE ${file} is open to group or others \\(mode 0${(mode & 0o777).toString(8)}\\); .*chmod 600`));
    assert.not.match(message, /\n/);
    assert.not.ok(message.includes(VALUE));
  }
  assert.match(await failure(readSecrets(join(dir, "missing.yaml"))), /FEM_SECRETS_FILE .* does not exist/);
  assert.match(await failure(readSecrets(dir)), /is not a regular file/);
});

test("an unparsable or invalid secrets file is refused naming lines and names, never a value", async () => {
  const broken = await failure(readSecrets(await secretsFile("broken.yaml", `DB_PASSWORD: "${VALUE}\nOTHER: [${VALUE}`, 0o600)));
  assert.match(broken, /^FEM_SECRETS_FILE .* cannot be parsed as YAML or JSON \([A-Z_]+ at line \d+, column \d+\)$/);
  assert.not.ok(broken.includes(VALUE), broken);
  const duplicate = await failure(readSecrets(await secretsFile("dup.yaml", `A: ${VALUE}\nA: ${VALUE}\n`, 0o600)));
  assert.match(duplicate, /DUPLICATE_KEY/);
  assert.not.ok(duplicate.includes(VALUE));
  const invalid = await failure(readSecrets(await secretsFile("bad.yaml", `db_password: ${VALUE}\nPORT: 5432\nNESTED: { a: "${VALUE}" }\n`, 0o600)));
  assert.match(invalid, /"db_password" is not a valid secret name/);
  assert.match(invalid, /PORT: the value must be a string/);
  assert.match(invalid, /NESTED: the value must be a string/);
  assert.not.ok(invalid.includes(VALUE));
  assert.throws(() => parseSecrets(`- ${VALUE}`, "list.yaml"), /must hold a mapping/);
  assert.throws(() => parseSecrets(`A: &x ${VALUE}\nB: *x\n`, "alias.yaml"), (err: Error) => !err.message.includes(VALUE));
});

test("secret names and references are checked", () => {
  assert.is(secretRefProblem("postgres://u:${secret:DB_PASSWORD}@h/${secret:DB}"), null);
  assert.is(secretRefProblem("no reference"), null);
  assert.match(secretRefProblem("${secret:db-password}") ?? "", /"db-password", which is not a valid name/);
  assert.match(secretRefProblem("${secret:}") ?? "", /not a valid name/);
  assert.match(secretRefProblem("${secret:DB_PASSWORD") ?? "", /unclosed/);
  assert.match(secretRefProblem(`\${secret:${"A".repeat(129)}}`) ?? "", /not a valid name/);
});

test("a run's env is the tool's env with its references resolved, and nothing else", () => {
  const secrets = new Map([["DB_PASSWORD", VALUE], ["USER_NAME", "$&-literal"]]);
  const env = { DSN: "postgres://${secret:USER_NAME}:${secret:DB_PASSWORD}@db/${secret:DB_PASSWORD}", PLAIN: "x" };
  assert.is(secretsProblem(env, secrets), null);
  assert.equal(buildRunEnv(env, secrets), { DSN: `postgres://$&-literal:${VALUE}@db/${VALUE}`, PLAIN: "x" });
  assert.equal(Object.keys(buildRunEnv({}, secrets)), [], "nothing of the agent's environment");
});

test("a secret the node does not hold is named, never a value", () => {
  const secrets = new Map([["DB_PASSWORD", VALUE]]);
  const problem = secretsProblem({ A: "${secret:NOPE}", B: "${secret:DB_PASSWORD}${secret:ALSO_MISSING}" }, secrets) ?? "";
  assert.is(problem, "the tool's env references the secrets ALSO_MISSING, NOPE, which this node does not hold (FEM_SECRETS_FILE)");
  assert.match(secretsProblem({ A: "${secret:bad name}" }, secrets) ?? "", /env A references the secret "bad name", which is not a valid name/);
  assert.throws(() => buildRunEnv({ A: "${secret:NOPE}" }, secrets), /env A references the secret NOPE, which this node does not hold/);
});

const tool: ToolDefinitionSource = { executable: "/opt/fem/stats", env: { DSN: "postgres://u:${secret:DB_PASSWORD}@db/x", LEVEL: "info" } };

test("a tool's digest covers which env variable references which secret, and no other env value", () => {
  assert.equal(toolDefinition(tool).secretEnv, { DSN: "postgres://u:${secret:DB_PASSWORD}@db/x" });
  assert.is(toolDefinition({ ...tool, env: { DSN: "x", LEVEL: "info" } }).secretEnv, undefined, "absent without references, so older digests stay as they were");
  assert.is(toolDigest({ ...tool, env: { ...tool.env, LEVEL: "debug" } }), toolDigest(tool));
  for (const env of [
    { DSN: "postgres://u:${secret:OTHER}@db/x", LEVEL: "info" },
    { DSN: "postgres://evil:${secret:DB_PASSWORD}@attacker/x", LEVEL: "info" },
    { DSN: "x", LEVEL: "${secret:DB_PASSWORD}" },
  ]) {
    assert.is.not(toolDigest({ ...tool, env }), toolDigest(tool), JSON.stringify(env));
  }
  assert.is(toolDigest(toolDefinition(tool)), toolDigest(tool), "the definition on the wire gives the same digest");
});

test("a pinned tool's dispatch cannot point a secret at another variable", () => {
  const dispatch = dispatchOf(tool, { argv: ["/opt/fem/stats"], env: { ...(tool.env as Record<string, string>) }, timeoutSeconds: null, resultFile: null, outputs: [] });
  const parsed = parsePolicy({ tools: [{ name: "stats", version: "1", digest: toolDigest(tool) }] });
  if (!parsed.ok) throw new Error(parsed.problems.join("; "));
  assert.is(policyProblem(parsed.policy, dispatch), null);
  assert.is(policyProblem(parsed.policy, { ...dispatch, env: { DSN: "postgres://u:${secret:DB_PASSWORD}@db/x", LEVEL: "warn" } }), null, "other values are the orchestrator's");
  for (const env of [
    { DSN: "postgres://u:${secret:DB_PASSWORD}@db/x", LEVEL: "${secret:DB_PASSWORD}" },
    { DSN: "postgres://evil:${secret:DB_PASSWORD}@attacker/x", LEVEL: "info" },
    { DSN: "no secret", LEVEL: "info" },
  ]) {
    assert.match(policyProblem(parsed.policy, { ...dispatch, env }) ?? "", /env (DSN|LEVEL) does not reference the secrets the tool's definition gives it/, JSON.stringify(env));
  }
});

test.run();
