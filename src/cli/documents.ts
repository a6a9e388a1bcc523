/**
 * Workflow and tool files (YAML, or JSON, which YAML reads too), checked against the JSON Schemas
 * committed under schema/ before anything is sent, so a mistake is reported with its line and field.
 */
import { readFile } from "node:fs/promises";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { CliError, toError } from "./errors.js";

export type DocumentKind = "workflow" | "tool";

/** The schemas ship with the package, at its root: dist/src/cli/ → ../../../schema/. */
const SCHEMA_DIR = new URL("../../../schema/", import.meta.url);

/** Problems reported for one file at most; the rest are counted. */
const MAX_PROBLEMS = 10;

const validators = new Map<DocumentKind, ValidateFunction>();

async function validatorFor(kind: DocumentKind): Promise<ValidateFunction> {
  const known = validators.get(kind);
  if (known) return known;
  const schema = JSON.parse(await readFile(new URL(`${kind}.schema.json`, SCHEMA_DIR), "utf8")) as object;
  const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true }).compile(schema);
  validators.set(kind, validate);
  return validate;
}

/**
 * Reads a workflow or tool file and returns its content as the GraphQL input. Throws a usage
 * CliError whose message lists each problem as `file:line:column: field: what is wrong`.
 */
export async function readDocument(file: string, kind: DocumentKind): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw CliError.usage(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? toError(err).message}`, { cause: err });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    throw CliError.usage(problemList(doc.errors.map((e) => `${at(e.pos[0])}: ${firstLine(e.message)}`)));
  }
  const value: unknown = doc.toJS();
  const validate = await validatorFor(kind);
  if (!validate(value)) {
    const problems = (validate.errors ?? []).filter(isReported).map((e) => {
      const { path, offset } = locate(doc, e);
      return `${at(offset)}: ${fieldName(path) || `the ${kind}`}: ${describe(e)}`;
    });
    throw CliError.usage(problemList([...new Set(problems)]));
  }
  return value as Record<string, unknown>;
}

function problemList(problems: string[]): string {
  const shown = problems.slice(0, MAX_PROBLEMS);
  if (problems.length > shown.length) shown.push(`… and ${problems.length - shown.length} more`);
  return shown.join("\n");
}

function firstLine(text: string): string {
  return text.split("\n")[0]!.trim();
}

/** A `propertyNames` failure comes with the inner error on the name; report the outer one only. */
function isReported(e: ErrorObject): boolean {
  return e.propertyName === undefined;
}

/** The data path of an error as keys, and where in the text it points (the offending key or value). */
function locate(doc: Document, e: ErrorObject): { path: (string | number)[]; offset: number } {
  const path = e.instancePath
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  const target = nodeAt(doc, path);
  const offset = target?.range?.[0] ?? 0;
  const params = e.params as Record<string, unknown>;
  const named = typeof params.additionalProperty === "string" ? params.additionalProperty : typeof params.propertyName === "string" ? params.propertyName : null;
  if (named !== null) {
    // Point at the unknown key itself.
    const pair = isMap(target) ? target.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === named) : undefined;
    const keyRange = pair && isScalar(pair.key) ? pair.key.range : undefined;
    return { path: [...path, named], offset: keyRange?.[0] ?? offset };
  }
  if (typeof params.missingProperty === "string") return { path: [...path, params.missingProperty], offset };
  return { path, offset };
}

function nodeAt(doc: Document, path: (string | number)[]): Node | null {
  const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
  return node && typeof node === "object" && "range" in node ? (node as Node) : null;
}

/** `tasks[0].nodeParams[1].params`, the way the server names fields. */
export function fieldName(path: (string | number)[]): string {
  return path.map((part, i) => (typeof part === "number" ? `[${part}]` : i === 0 ? part : `.${part}`)).join("");
}

function describe(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "required":
      return "is required";
    case "additionalProperties":
      return "is not a field of this object";
    case "propertyNames":
      return "is not a valid name here";
    case "enum":
      return `must be one of ${(params.allowedValues as unknown[]).join(", ")}`;
    case "type": {
      const unquoted = params.type === "string" && (typeof e.data === "number" || typeof e.data === "boolean");
      return `must be ${article(String(params.type))}${unquoted ? ` (YAML reads ${JSON.stringify(e.data)} as a ${typeof e.data}: quote it)` : ""}`;
    }
    case "pattern":
      return `must match ${String(params.pattern)}`;
    default:
      return e.message ?? e.keyword;
  }
}

function article(type: string): string {
  const names = type.split(",").map((t) => (t === "integer" ? "an integer" : t === "object" ? "a mapping" : t === "array" ? "a list" : t === "null" ? "null" : `a ${t}`));
  return names.join(" or ");
}
