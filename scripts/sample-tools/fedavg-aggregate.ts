/**
 * Federated average, aggregation step: combines the local `{ count, mean }` results of the upstream
 * runs (fem-inputs.json, written by fem-agent) into the global mean, weighting each local mean by
 * its count, and writes `{ count, mean }` to result.json.
 */
import { readFileSync, writeFileSync } from "node:fs";

interface Inputs {
  upstream: Record<string, { nodeId: string; result: { count: number; mean: number | null } | null }[]>;
}

const inputs = JSON.parse(readFileSync("fem-inputs.json", "utf8")) as Inputs;
let count = 0;
let sum = 0;
for (const [task, results] of Object.entries(inputs.upstream)) {
  for (const { nodeId, result } of results) {
    if (!result || result.count === 0 || result.mean === null) continue;
    console.log(`${task} on ${nodeId}: count ${result.count}, mean ${result.mean.toFixed(4)}`);
    count += result.count;
    sum += result.mean * result.count;
  }
}
const mean = count > 0 ? sum / count : null;
writeFileSync("result.json", JSON.stringify({ count, mean }));
console.log(`federated mean over ${count} values: ${mean === null ? "n/a" : mean.toFixed(4)}`);
