/**
 * The federated round's aggregation step (examples/federated-round): reads the weights files that
 * fem-agent placed under inputs/<task>/<node>/ and listed in fem-inputs.json, checks each against
 * the sha256 listed there, averages them into model.bin and writes what it did to result.json.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

interface Inputs {
  files: { task: string; node: string; path: string; file: string; sizeBytes: number; sha256: string }[];
}

const { files } = JSON.parse(readFileSync("fem-inputs.json", "utf8")) as Inputs;
if (files.length === 0) {
  console.error("no input files in fem-inputs.json");
  process.exit(2);
}
const models: Float32Array[] = [];
const checked = files.map((f) => {
  const data = readFileSync(f.file);
  const sha256 = createHash("sha256").update(data).digest("hex");
  if (sha256 !== f.sha256) {
    console.error(`${f.file}: sha256 ${sha256}, but fem-inputs.json lists ${f.sha256}`);
    process.exit(3);
  }
  console.log(`${f.task} on ${f.node}: ${f.path}, ${data.length} bytes, sha256 ${sha256.slice(0, 16)}… matches`);
  models.push(new Float32Array(data.buffer, data.byteOffset, data.length / 4));
  return { task: f.task, node: f.node, path: f.path, sha256 };
});
const model = new Float32Array(models[0].length);
for (let i = 0; i < model.length; i += 1) model[i] = models.reduce((sum, m) => sum + m[i], 0) / models.length;
const bytes = Buffer.from(model.buffer);
writeFileSync("model.bin", bytes);
const sha256 = createHash("sha256").update(bytes).digest("hex");
writeFileSync("result.json", JSON.stringify({ inputs: checked, model: { path: "model.bin", sizeBytes: bytes.length, sha256 } }));
console.log(`averaged ${models.length} models into model.bin (sha256 ${sha256})`);
