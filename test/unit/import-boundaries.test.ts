import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";

const test = suite("import boundaries");
const SRC = fileURLToPath(new URL("../../../src/", import.meta.url));

/** The relative modules each TypeScript file of `src/<folder>` imports, by file name. */
function relativeImports(folder: string): [file: string, specifier: string][] {
  const dir = `${SRC}${folder}/`;
  return readdirSync(dir)
    .filter((name) => name.endsWith(".ts"))
    .flatMap((name) => {
      const text = readFileSync(`${dir}${name}`, "utf8");
      const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]*)"/g)].map((match) => match[1] ?? "");
      return specifiers.map((specifier): [string, string] => [`${folder}/${name}`, specifier]);
    });
}

test("src/shared imports nothing else from src/", () => {
  const imports = relativeImports("shared");
  assert.ok(imports.some(([file]) => file === "shared/index.ts"), "the scan reads the folder");
  assert.equal(imports.filter(([, specifier]) => !specifier.startsWith("./")), []);
});

test("the agent imports only messaging/contracts and shared from the rest of src/", () => {
  const allowed = new Set(["../messaging/contracts.js", "../shared/index.js"]);
  const imports = relativeImports("agent");
  assert.ok(imports.some(([, specifier]) => specifier === "../messaging/contracts.js"), "the scan reads the folder");
  assert.equal(imports.filter(([, specifier]) => !specifier.startsWith("./") && !allowed.has(specifier)), []);
});

test.run();
