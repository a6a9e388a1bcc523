/** One serialisation of a shared result for every socket, through a real graphql-ws server and clients. */
import "reflect-metadata";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { GraphQLObjectType, GraphQLSchema, GraphQLString, type ExecutionResult } from "graphql";
import { createClient, type Client } from "graphql-ws";
import { useServer } from "graphql-ws/use/ws";
import WebSocket, { WebSocketServer } from "ws";
import { createPubSub } from "../../src/live/pubsub.js";
import { createSharedPayloads } from "../../src/graphql/shared-payloads.js";
import { createSharedSubscribe } from "../../src/graphql/shared-subscriptions.js";
import { withTimeout } from "../support/wait.js";

const test = suite("shared payload serialisation over graphql-ws");

const Inner = new GraphQLObjectType({ name: "Inner", fields: { type: { type: GraphQLString }, payload: { type: GraphQLString } } });
const Event = new GraphQLObjectType({ name: "Event", fields: { text: { type: GraphQLString }, payload: { type: Inner } } });

async function start() {
  const pubsub = createPubSub(100);
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString, resolve: () => "yes" } } }),
    subscription: new GraphQLObjectType({
      name: "Subscription",
      fields: { events: { type: Event, subscribe: () => pubsub.subscribe("events"), resolve: (e: unknown) => e } },
    }),
  });
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  const payloads = createSharedPayloads();
  wss.on("connection", (socket) => payloads.attach(socket));
  const cleanup = useServer(
    { schema, subscribe: createSharedSubscribe(() => "one key"), onNext: (_ctx, _id, _payload, _args, result) => result as never, jsonMessageReplacer: payloads.replacer },
    wss,
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: Client[] = [];
  const client = () => {
    const c = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0 });
    clients.push(c);
    return c;
  };
  const stop = async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await cleanup.dispose();
    await new Promise((resolve) => server.close(resolve));
  };
  return { pubsub, payloads, client, stop };
}

/** The first `count` results of a subscription. */
function take(client: Client, query: string, count: number): Promise<ExecutionResult[]> {
  return new Promise((resolve, reject) => {
    const got: ExecutionResult[] = [];
    const dispose = client.subscribe(
      { query },
      {
        next: (result) => {
          got.push(result as ExecutionResult);
          if (got.length === count) {
            dispose();
            resolve(got);
          }
        },
        error: reject,
        complete: () => resolve(got),
      },
    );
  });
}

test("three subscribers of one event get it whole, serialised once; data that looks like the message's own fields stays data", async () => {
  const { pubsub, payloads, client, stop } = await start();
  try {
    const query = "subscription { events { text payload { type payload } } }";
    const receiving = [client(), client(), client()].map((c) => take(c, query, 2));
    await withTimeout(
      (async () => {
        while (pubsub.subscriberCount("events") < 3) await new Promise((r) => setTimeout(r, 10));
      })(),
      5_000,
      "three subscribers",
    );
    const before = payloads.serialisedCount();
    // The marker itself, quotes, a newline and non-ASCII text as data: all must arrive as they were.
    const first = { text: 'a "quoted" line\nwith é and \u2028', payload: { type: "next", payload: "#fem-serialised-payload:1#" } };
    const second = { text: "second", payload: null };
    pubsub.publish("events", first);
    pubsub.publish("events", second);
    const results = await withTimeout(Promise.all(receiving), 5_000, "the events");
    for (const got of results) assert.equal(got, [{ data: { events: first } }, { data: { events: second } }]);
    assert.is(payloads.serialisedCount() - before, 2, "each event's result serialised once for three sockets");
  } finally {
    await stop();
  }
});

test("a query over the socket, and an error, are sent as graphql-ws would", async () => {
  const { client, stop } = await start();
  try {
    const c = client();
    assert.equal(await withTimeout(take(c, "{ ok }", 1), 5_000, "the query"), [{ data: { ok: "yes" } }]);
    const error = await withTimeout(
      take(c, "{ nope }", 1).then(
        () => null,
        (err: unknown) => err,
      ),
      5_000,
      "the error",
    );
    assert.ok(Array.isArray(error) && /Cannot query field "nope"/.test(String((error as { message: string }[])[0]?.message)), JSON.stringify(error));
  } finally {
    await stop();
  }
});

test("two messages serialised before either is sent each reach their own socket with their own payload", async () => {
  const payloads = createSharedPayloads();
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  const serverSockets: WebSocket[] = [];
  wss.on("connection", (socket) => {
    payloads.attach(socket);
    serverSockets.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients = [new WebSocket(url), new WebSocket(url)];
  try {
    const received = clients.map((c) => new Promise<string>((resolve) => c.once("message", (data) => resolve(String(data)))));
    await withTimeout(
      (async () => {
        while (serverSockets.length < 2) await new Promise((r) => setTimeout(r, 10));
      })(),
      5_000,
      "two sockets",
    );
    const alice = { id: "1", type: "next", payload: { data: { secret: "alice's" } } };
    const bob = { id: "1", type: "next", payload: { data: { secret: "bob's" } } };
    const forAlice = JSON.stringify(alice, payloads.replacer);
    const forBob = JSON.stringify(bob, payloads.replacer);
    // Sent in the other order than they were serialised.
    serverSockets[1]!.send(forBob);
    serverSockets[0]!.send(forAlice);
    const [gotAlice, gotBob] = await withTimeout(Promise.all(received), 5_000, "both messages");
    assert.equal(JSON.parse(gotAlice!), alice);
    assert.equal(JSON.parse(gotBob!), bob);
  } finally {
    for (const c of clients) c.close();
    await new Promise((resolve) => wss.close(resolve));
    await new Promise((resolve) => server.close(resolve));
  }
});

test.run();
