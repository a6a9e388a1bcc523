/**
 * The demo's sample tool: computes the count, sum and mean of the values a node holds, printing
 * progress as it goes, and writes them to result.json in its sandbox. The values are the node's
 * dataset `values` (a task names it in `datasets`): the file values.csv, one number per line or
 * comma-separated, in the directory FEM_DATASET_VALUES names (`/data/values` in the sandbox
 * launcher). `--values 1,2,3` gives them by hand instead.
 *   node local-stats.js --site <name> [--values 1,2,3] [--delay-ms 150]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    site: { type: "string", default: "unknown site" },
    values: { type: "string" },
    "delay-ms": { type: "string", default: "100" },
  },
});
const dataset = process.env.FEM_DATASET_VALUES;
if (values.values === undefined && dataset === undefined) {
  console.error("no values: name the dataset in the task (datasets: [\"values\"]) or give --values");
  process.exit(2);
}
const text = values.values ?? readFileSync(join(dataset!, "values.csv"), "utf8");
const numbers = text
  .split(/[,\n]/)
  .filter((v) => v.trim() !== "")
  .map(Number);
if (numbers.some((n) => !Number.isFinite(n))) {
  console.error(`not a list of numbers: ${text}`);
  process.exit(2);
}
const delayMs = Number(values["delay-ms"]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

console.log(`${values.site}: reading ${numbers.length} local values (they never leave this node)`);
let sum = 0;
for (const [i, n] of numbers.entries()) {
  await sleep(delayMs);
  sum += n;
  console.log(`${values.site}: value ${i + 1}/${numbers.length} read, running sum ${sum.toFixed(2)}`);
}
const result = { site: values.site, count: numbers.length, sum, mean: numbers.length ? sum / numbers.length : null };
writeFileSync("result.json", JSON.stringify(result));
console.error(`${values.site}: wrote result.json`);
console.log(`${values.site}: mean ${result.mean} over ${result.count} values`);
