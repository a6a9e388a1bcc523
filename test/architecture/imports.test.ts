/**
 * The layout rules, checked on the source: domains talk to each other only through their
 * index.ts and never in a cycle; the kernel, shared utilities and the wire contract import no
 * domain; the agent imports only the wire contract and shared utilities; the `fem` CLI imports
 * only itself and shared utilities (it talks to the orchestrator over HTTP and WebSocket); and only
 * the run lifecycle writes run state.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";

const test = suite("architecture");

// Compiled to dist/test/architecture/; the TypeScript sources are at the repository's src/.
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const srcDir = join(root, "src");

const DOMAINS = ["accounting", "artifacts", "audit", "auth", "dead-letters", "ingestion", "logs", "nodes", "projects", "runs", "tools", "workflows"];
/** Composition points that may import any domain (through its index). */
const COMPOSERS = ["app.ts", "main.ts", "graphql/schema.ts", "graphql/context.ts", "db/entities.ts"];

interface Module {
  /** Path relative to src/, with forward slashes. */
  path: string;
  source: string;
  imports: string[];
}

function listTs(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return listTs(path);
    return name.endsWith(".ts") && !name.endsWith(".d.ts") ? [path] : [];
  });
}

function toPosix(path: string): string {
  return path.split(sep).join("/");
}

function loadModules(): Module[] {
  return listTs(srcDir).map((file) => {
    const source = readFileSync(file, "utf8");
    const specifiers = [...source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/g), ...source.matchAll(/import\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1]);
    const imports = specifiers
      .filter((s) => s.startsWith("."))
      .map((s) => toPosix(relative(srcDir, resolve(dirname(file), s))).replace(/\.js$/, ".ts"));
    return { path: toPosix(relative(srcDir, file)), source, imports };
  });
}

const modules = loadModules();
const folderOf = (path: string): string => (path.includes("/") ? path.slice(0, path.indexOf("/")) : "");

test("finds the source and every domain folder", () => {
  assert.ok(modules.length > 50, `only ${modules.length} modules found under ${srcDir}`);
  for (const domain of DOMAINS) assert.ok(modules.some((m) => m.path === `${domain}/index.ts`), `${domain}/index.ts is missing`);
});

test("a module reaches another domain only through that domain's index.ts", () => {
  const problems: string[] = [];
  for (const m of modules) {
    for (const target of m.imports) {
      const domain = folderOf(target);
      if (!DOMAINS.includes(domain) || folderOf(m.path) === domain) continue;
      if (target !== `${domain}/index.ts`) problems.push(`${m.path} imports ${target}`);
    }
  }
  assert.equal(problems, [], `import the domain's index.ts instead:\n${problems.join("\n")}`);
});

test("domain folders import each other without a cycle", () => {
  const edges = new Map<string, Set<string>>(DOMAINS.map((d) => [d, new Set()]));
  for (const m of modules) {
    const from = folderOf(m.path);
    if (!DOMAINS.includes(from)) continue;
    for (const target of m.imports) {
      const to = folderOf(target);
      if (DOMAINS.includes(to) && to !== from) edges.get(from)!.add(to);
    }
  }
  const cycles: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (node: string, path: string[]): void => {
    if (state.get(node) === "done") return;
    if (state.get(node) === "visiting") {
      cycles.push([...path.slice(path.indexOf(node)), node].join(" → "));
      return;
    }
    state.set(node, "visiting");
    for (const next of edges.get(node)!) visit(next, [...path, node]);
    state.set(node, "done");
  };
  for (const domain of DOMAINS) visit(domain, []);
  assert.equal(cycles, [], `import cycles between domains:\n${cycles.join("\n")}`);
});

test("the kernel, shared utilities, the wire contract and infrastructure import no domain", () => {
  const problems: string[] = [];
  for (const m of modules) {
    if (DOMAINS.includes(folderOf(m.path)) || COMPOSERS.includes(m.path)) continue;
    for (const target of m.imports) if (DOMAINS.includes(folderOf(target))) problems.push(`${m.path} imports ${target}`);
  }
  assert.equal(problems, [], problems.join("\n"));
});

test("shared imports nothing else of src, and the wire contract only shared", () => {
  const problems: string[] = [];
  for (const m of modules) {
    const allowed = m.path.startsWith("shared/") ? ["shared"] : m.path === "messaging/contracts.ts" ? ["shared"] : null;
    if (!allowed) continue;
    for (const target of m.imports) if (!allowed.includes(folderOf(target))) problems.push(`${m.path} imports ${target}`);
  }
  assert.equal(problems, [], problems.join("\n"));
});

test("the kernel imports only the kernel, shared utilities and the wire contract", () => {
  const problems = modules
    .filter((m) => m.path.startsWith("kernel/"))
    .flatMap((m) => m.imports.filter((t) => !t.startsWith("kernel/") && !t.startsWith("shared/") && t !== "messaging/contracts.ts").map((t) => `${m.path} imports ${t}`));
  assert.equal(problems, [], problems.join("\n"));
});

test("the agent imports only itself, the wire contract and shared utilities", () => {
  const problems = modules
    .filter((m) => m.path.startsWith("agent/"))
    .flatMap((m) => m.imports.filter((t) => !t.startsWith("agent/") && !t.startsWith("shared/") && t !== "messaging/contracts.ts").map((t) => `${m.path} imports ${t}`));
  assert.equal(problems, [], problems.join("\n"));
});

test("the CLI imports only itself and shared utilities, and no server package", () => {
  const serverPackages = /^(?:@mikro-orm\/|type-graphql$|@apollo\/|rascal$|amqplib$|reflect-metadata$)/;
  const problems = modules
    .filter((m) => m.path.startsWith("cli/"))
    .flatMap((m) => [
      ...m.imports.filter((t) => !t.startsWith("cli/") && !t.startsWith("shared/")).map((t) => `${m.path} imports ${t}`),
      ...[...m.source.matchAll(/\bfrom\s+"([^".][^"]*)"/g)].map((x) => x[1]!).filter((p) => serverPackages.test(p)).map((p) => `${m.path} imports the server package ${p}`),
    ]);
  assert.ok(modules.some((m) => m.path === "cli/main.ts"), "cli/main.ts is missing");
  assert.equal(problems, [], problems.join("\n"));
});

test("only the run lifecycle writes a run's state, attempt or node", () => {
  const writes = [
    /update\s+run\b(?:\s+\w+)?\s+set\b[^`]*?\b(?:state|attempt|node_id)\s*=/i,
    /insert\s+into\s+run\s*\(/i,
    /delete\s+from\s+run\b/i,
    /\binsert(?:Many)?\(\s*Run\b/,
  ];
  const problems: string[] = [];
  for (const m of modules) {
    if (m.path.startsWith("runs/lifecycle/")) continue;
    for (const pattern of writes) if (pattern.test(m.source)) problems.push(`${m.path} matches ${pattern}`);
    if (/\brun\.(?:state|attempt|nodeId)\s*=[^=]/.test(m.source)) problems.push(`${m.path} assigns a run's state, attempt or node`);
  }
  assert.equal(problems, [], `run state is written outside src/runs/lifecycle/:\n${problems.join("\n")}`);
});

test.run();
