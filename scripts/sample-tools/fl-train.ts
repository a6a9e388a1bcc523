/**
 * The federated round's local step (examples/federated-round): "trains" a model on the node's data
 * and writes its weights to weights.bin, float32 values (`--size-mib` MiB), each `scale × ((i mod
 * 97) + 1)`, so the aggregate is easy to check. The weights leave the node only as its policy says.
 *   node fl-train.js --site <name> --scale <number> [--size-mib 4]
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { site: { type: "string", default: "unknown site" }, scale: { type: "string", default: "1" }, "size-mib": { type: "string", default: "4" } } });
const scale = Number(values.scale);
const weights = new Float32Array((Number(values["size-mib"]) * 1024 * 1024) / 4);
for (let i = 0; i < weights.length; i += 1) weights[i] = scale * ((i % 97) + 1);
writeFileSync("weights.bin", Buffer.from(weights.buffer));
console.log(`${values.site}: wrote ${weights.length} weights (${weights.byteLength} bytes) to weights.bin`);
