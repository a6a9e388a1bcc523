/**
 * Editing the node's policy file for `fem-agent policy add`: a pin is added or updated and every
 * other entry, comment and the file's format (YAML, or JSON for a `.json` file) are kept; the new
 * file replaces the old one atomically.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { Document, isMap, isSeq, parseDocument } from "yaml";
import { errorCode } from "../shared/index.js";
import { parsePolicy, type ToolPolicy } from "./policy.js";

export interface Pin {
  name: string;
  version: string;
  digest: string;
}

/** What `pinTool` did: `unchanged` when the policy already ran the tool with that digest. */
export type PinChange = { kind: "added" } | { kind: "updated"; replaced: string[] } | { kind: "unchanged" };

/** A new policy file's mode: the policy is no secret, but only its owner should change it. */
const NEW_FILE_MODE = 0o644;

/** The policy file as a YAML document, or an empty one when the file does not exist yet. */
async function loadDocument(file: string): Promise<{ doc: Document; mode: number }> {
  let text: string;
  let mode = NEW_FILE_MODE;
  try {
    text = await fs.readFile(file, "utf8");
    mode = (await fs.stat(file)).mode & 0o777;
  } catch (err) {
    if (errorCode(err) !== "ENOENT") throw new Error(`cannot read the policy file ${file}`, { cause: err });
    return { doc: new Document({ tools: [] }), mode };
  }
  const doc: Document = parseDocument(text, { prettyErrors: false });
  const [syntax] = doc.errors;
  if (syntax) throw new Error(`the policy file ${file} cannot be parsed as YAML or JSON: ${syntax.message}`);
  if (doc.contents === null) doc.contents = doc.createNode({ tools: [] });
  return { doc, mode };
}

/** The valid policy a document holds; throws listing its problems, so an invalid file is never rewritten. */
function policyOf(doc: Document, file: string): ToolPolicy {
  const parsed = parsePolicy(doc.toJS());
  if (!parsed.ok) throw new Error(`the policy file ${file} is invalid, so it is left as it is: ${parsed.problems.join("; ")}`);
  return parsed.policy;
}

/** Reads and checks the policy file (YAML or JSON); throws when it is missing or invalid. */
export async function loadPolicyFile(file: string): Promise<ToolPolicy> {
  await fs.access(file).catch(() => {
    throw new Error(`the policy file ${file} does not exist`);
  });
  return policyOf((await loadDocument(file)).doc, file);
}

/**
 * Pins `pin` in the policy file, creating the file if needed: an entry for the same name and
 * version gets the digest (replacing what it pinned before); otherwise a `name`, `version`,
 * `digest` entry is appended. Unchanged when an entry already runs that name, version and digest.
 */
export async function pinTool(file: string, pin: Pin): Promise<PinChange> {
  const { doc, mode } = await loadDocument(file);
  const policy = policyOf(doc, file);
  const covers = (t: ToolPolicy["tools"][number]) => t.name === pin.name && (t.version === null || t.version === pin.version);
  if (policy.tools.some((t) => covers(t) && t.digests.includes(pin.digest))) return { kind: "unchanged" };
  const index = policy.tools.findIndex((t) => t.name === pin.name && t.version === pin.version);
  let change: PinChange;
  if (index >= 0) {
    change = { kind: "updated", replaced: policy.tools[index]?.digests ?? [] };
    doc.deleteIn(["tools", index, "digests"]);
    doc.setIn(["tools", index, "digest"], pin.digest);
  } else {
    change = { kind: "added" };
    const entry = { name: pin.name, version: pin.version, digest: pin.digest };
    const tools = isMap(doc.contents) ? doc.contents.get("tools", true) : undefined;
    // An empty flow list (`tools: []`) becomes a block list rather than a one-line one.
    if (isSeq(tools) && tools.items.length > 0) tools.add(doc.createNode(entry));
    else doc.setIn(["tools"], doc.createNode([entry]));
  }
  policyOf(doc, file);
  const text = path.extname(file).toLowerCase() === ".json" ? `${JSON.stringify(doc.toJS(), null, 2)}\n` : doc.toString();
  await writeAtomically(file, text, mode);
  return change;
}

/** Writes a sibling temporary file, flushes it to disk, then renames it over `file`. */
async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const handle = await fs.open(temporary, "wx", mode);
  try {
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(temporary, file);
  } catch (err) {
    await fs.rm(temporary, { force: true });
    throw new Error(`cannot replace the policy file ${file}`, { cause: err });
  }
}
