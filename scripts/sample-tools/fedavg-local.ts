/**
 * Federated average, local step: reads this node's data file (one number per line, or CSV with
 * the value in the first column; a header line is skipped) and writes its local `{ count, mean }`
 * to result.json. Only these two numbers leave the node.
 *   node fedavg-local.js --data /path/on/node/values.csv
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { data: { type: "string" } } });
if (!values.data) {
  console.error("usage: fedavg-local --data <file>");
  process.exit(2);
}
const numbers = readFileSync(values.data, "utf8")
  .split("\n")
  .map((line) => line.split(",")[0].trim())
  .filter((cell) => cell !== "" && Number.isFinite(Number(cell)))
  .map(Number);
const sum = numbers.reduce((a, b) => a + b, 0);
console.log(`read ${numbers.length} values from the local data file`);
const mean = numbers.length > 0 ? sum / numbers.length : null;
writeFileSync("result.json", JSON.stringify({ count: numbers.length, mean }));
console.log(`local count ${numbers.length}, local mean ${mean === null ? "n/a" : mean.toFixed(4)}`);
