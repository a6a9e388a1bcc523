/**
 * The demo's sample tool: computes the count, sum and mean of the values a node holds, printing
 * progress as it goes, and writes them to result.json in its sandbox. Run by fem-agent as
 * `node local-stats.js --site <name> --values 1,2,3 --delay-ms 150`.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    site: { type: "string", default: "unknown site" },
    values: { type: "string", default: "" },
    "delay-ms": { type: "string", default: "100" },
  },
});
const numbers = (values.values ?? "")
  .split(",")
  .filter((v) => v.trim() !== "")
  .map(Number);
if (numbers.some((n) => !Number.isFinite(n))) {
  console.error(`not a list of numbers: ${values.values}`);
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
