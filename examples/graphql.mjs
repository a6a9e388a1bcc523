#!/usr/bin/env node
// Sends one GraphQL query or mutation to the orchestrator over HTTP and prints the answer's
// `data` as JSON. Errors go to stderr as "<code>: <message>", and the exit status is then 1.
//
//   node examples/graphql.mjs <operation.graphql> [variables]
//
// variables: a JSON file, or JSON text starting with "{". FEM_URL is the orchestrator's GraphQL
// URL (default http://127.0.0.1:4000/graphql); FEM_TOKEN is your API token (sent as
// Authorization: Bearer). Plain Node 20; no package needed.
import { readFile } from "node:fs/promises";

const [operationFile, variablesArg] = process.argv.slice(2);
if (!operationFile) {
  console.error("usage: node examples/graphql.mjs <operation.graphql> [variables.json | '{...}']");
  process.exit(2);
}
const url = process.env.FEM_URL ?? "http://127.0.0.1:4000/graphql";
const token = process.env.FEM_TOKEN;
const query = await readFile(operationFile, "utf8");
const variablesText =
  variablesArg === undefined ? "{}" : variablesArg.trimStart().startsWith("{") ? variablesArg : await readFile(variablesArg, "utf8");

let body;
try {
  const response = await fetch(url, {
    method: "POST",
    // The server refuses other content types (protection against cross-site request forgery).
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables: JSON.parse(variablesText) }),
  });
  body = await response.json();
} catch (err) {
  console.error(`graphql.mjs: no answer from ${url}: ${err.cause?.code ?? err.message}`);
  process.exit(2);
}
if (body.data) console.log(JSON.stringify(body.data, null, 2));
for (const error of body.errors ?? []) console.error(`${error.extensions?.code ?? "ERROR"}: ${error.message}`);
process.exitCode = body.errors?.length ? 1 : 0;
