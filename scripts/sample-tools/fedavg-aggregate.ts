/**
 * Federated average, aggregation step: combines the `{ count, sum }` results of the upstream local
 * runs (fem-inputs.json, written by fem-agent) into the global mean, written to result.json.
 */
import { readFileSync, writeFileSync } from "node:fs";

interface Inputs {
  upstream: Record<string, { nodeId: string; result: { count: number; sum: number } | null }[]>;
}

const inputs = JSON.parse(readFileSync("fem-inputs.json", "utf8")) as Inputs;
let count = 0;
let sum = 0;
for (const [task, results] of Object.entries(inputs.upstream)) {
  for (const { nodeId, result } of results) {
    if (!result) continue;
    console.log(`${task} on ${nodeId}: count ${result.count}, sum ${result.sum.toFixed(4)}`);
    count += result.count;
    sum += result.sum;
  }
}
const mean = count > 0 ? sum / count : null;
writeFileSync("result.json", JSON.stringify({ count, sum, mean }));
console.log(`federated mean over ${count} values: ${mean === null ? "n/a" : mean.toFixed(4)}`);
