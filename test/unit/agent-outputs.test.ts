import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { globProblem, listOutputs } from "../../src/agent/outputs.js";
import { MAX_ARTIFACT_BYTES, MAX_ARTIFACT_PATH_CHARS, MAX_ARTIFACT_REASON_CHARS, MAX_MANIFEST_FILES, MAX_MANIFEST_JSON_BYTES } from "../../src/messaging/contracts.js";

const test = suite("agent output manifests");
let root: string;
let runDir: string;

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), "fem-outputs-"));
  runDir = join(root, "run");
  await mkdir(join(runDir, "out", "sub"), { recursive: true });
  await writeFile(join(runDir, "out", "a.txt"), "alpha\n");
  await writeFile(join(runDir, "out", "sub", "b.csv"), "x,y\n1,2\n");
  await writeFile(join(runDir, "out", ".hidden"), "h");
  await writeFile(join(root, "outside.txt"), "not the run's");
  await symlink("/etc/passwd", join(runDir, "out", "passwd"));
  await symlink(root, join(runDir, "parent"));
  await writeFile(join(runDir, "big.bin"), "");
  await truncate(join(runDir, "big.bin"), MAX_ARTIFACT_BYTES + 1);
});

test.after(async () => rm(root, { recursive: true, force: true }));

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

test("lists matching regular files with their size and sha256, dot files included, in path order", async () => {
  const manifest = await listOutputs(runDir, ["out/**/*.txt", "out/sub/*", "out/.hidden"], "review");
  assert.equal(manifest, {
    policy: "review",
    omitted: 0,
    files: [
      { path: "out/.hidden", sizeBytes: 1, sha256: sha256("h"), refused: null },
      { path: "out/a.txt", sizeBytes: 6, sha256: sha256("alpha\n"), refused: null },
      { path: "out/sub/b.csv", sizeBytes: 8, sha256: sha256("x,y\n1,2\n"), refused: null },
    ],
  });
});

test("refuses globs that leave the sandbox, symbolic links (to files and to directories are not followed) and a file over the cap, each with a reason", async () => {
  const manifest = await listOutputs(runDir, ["../*", "/etc/passwd", "out/../../outside.txt", "out/passwd", "parent/**", "big.bin"], "auto");
  const reasons = Object.fromEntries(manifest.files.map((f) => [f.path, f.refused]));
  assert.match(reasons["../*"] ?? "", /'\.\.' leaves the run's sandbox/);
  assert.match(reasons["/etc/passwd"] ?? "", /absolute path leaves the run's sandbox/);
  assert.match(reasons["out/../../outside.txt"] ?? "", /'\.\.' leaves/);
  assert.match(reasons["out/passwd"] ?? "", /symbolic link/);
  assert.match(reasons.parent ?? "", /symbolic link/, "a linked directory is listed as a link, never walked");
  assert.match(reasons["big.bin"] ?? "", new RegExp(`${MAX_ARTIFACT_BYTES + 1} bytes: over the ${MAX_ARTIFACT_BYTES}-byte limit`));
  assert.ok(manifest.files.every((f) => f.sha256 === null), "nothing refused was read");
  assert.not.ok(manifest.files.some((f) => f.path.includes("outside")) && manifest.files.some((f) => f.refused === null));
});

test("a file that would pass the total cap is refused; the files before it are kept", async () => {
  const manifest = await listOutputs(runDir, ["out/a.txt", "out/sub/b.csv"], "auto", { maxTotalBytes: 10 });
  assert.is(manifest.files[0].refused, null);
  assert.match(manifest.files[1].refused ?? "", /would pass their 10-byte total limit/);
});

test("past the file cap the rest are counted, not listed; a manifest at its caps stays well under the event limit", async () => {
  const many = join(root, "many");
  await mkdir(many);
  for (let i = 0; i < MAX_MANIFEST_FILES + 5; i++) await writeFile(join(many, `f${String(i).padStart(4, "0")}`), "");
  const manifest = await listOutputs(many, ["*"], "local");
  assert.is(manifest.files.length, MAX_MANIFEST_FILES);
  assert.is(manifest.omitted, 5);
  const worst = {
    policy: "review",
    omitted: 2_147_483_647,
    files: Array.from({ length: MAX_MANIFEST_FILES }, () => ({ path: '"'.repeat(MAX_ARTIFACT_PATH_CHARS), sizeBytes: MAX_ARTIFACT_BYTES, sha256: "f".repeat(64), refused: "\\".repeat(MAX_ARTIFACT_REASON_CHARS) })),
  };
  const bytes = Buffer.byteLength(JSON.stringify(worst));
  assert.ok(bytes <= MAX_MANIFEST_JSON_BYTES, `${bytes} bytes at the caps, over the stated ${MAX_MANIFEST_JSON_BYTES}`);
  // Room is left for a result at the default FEM_MAX_RESULT_BYTES (64 KiB) under the default FEM_MAX_EVENT_BYTES (512 KiB).
  assert.ok(MAX_MANIFEST_JSON_BYTES + 65_536 + 8_192 < 524_288, `${MAX_MANIFEST_JSON_BYTES} bytes at the caps`);
});

test("globProblem accepts relative globs only", () => {
  assert.is(globProblem("results/*.csv"), null);
  assert.is(globProblem("**/model.bin"), null);
  assert.ok(globProblem("a/../../b"));
  assert.ok(globProblem("~/x"));
  assert.ok(globProblem(""));
});

test.run();
