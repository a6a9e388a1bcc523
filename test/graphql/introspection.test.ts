/** Introspection can be switched off (FEM_INTROSPECTION=false, the default with NODE_ENV=production), on both transports alike. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Client } from "graphql-ws";
import { parseConfig } from "../../src/config.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gql, wsClient, wsOnce } from "../support/graphql.js";

const test = suite("introspection");
let env: TestEnv;
let client: Client;
const INTROSPECT = `{ __schema { queryType { name } } }`;

test.before(async () => {
  env = await createTestEnv({ introspection: false });
  client = wsClient(env.orchestrator.wsUrl);
});

test.after(async () => {
  await client?.dispose();
  await env?.dispose();
});

test("is on by default and off with NODE_ENV=production unless FEM_INTROSPECTION says otherwise", () => {
  const config = (env: Record<string, string>) => {
    const parsed = parseConfig(env);
    assert.ok(parsed.ok);
    return parsed.ok ? parsed.config.introspection : null;
  };
  assert.is(config({}), true);
  assert.is(config({ NODE_ENV: "production" }), false);
  assert.is(config({ NODE_ENV: "production", FEM_INTROSPECTION: "true" }), true);
  assert.is(config({ FEM_INTROSPECTION: "false" }), false);
});

test("when off, __schema is refused over HTTP and over WebSocket, and ordinary queries still work", async () => {
  const http = await gql(env.orchestrator.url, INTROSPECT);
  assert.is(http.data ?? null, null);
  assert.is(http.errors?.[0]?.extensions?.code, "BAD_USER_INPUT", JSON.stringify(http.errors));
  const ws = await wsOnce(client, INTROSPECT);
  assert.ok(ws.errors?.length, JSON.stringify(ws));
  assert.match(ws.errors![0].message, /introspection/i);
  const me = await gql(env.orchestrator.url, `{ me { subject } }`);
  assert.ok(me.data?.me, JSON.stringify(me.errors));
});

test.run();
