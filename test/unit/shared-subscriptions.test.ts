import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { GraphQLObjectType, GraphQLSchema, GraphQLString, parse, type ExecutionArgs, type ExecutionResult } from "graphql";
import { createPubSub } from "../../src/live/pubsub.js";
import { createSharedSubscribe } from "../../src/graphql/shared-subscriptions.js";

const test = suite("subscription execution shared by identical subscriptions");

function setup() {
  const pubsub = createPubSub(100);
  const calls = { resolved: 0 };
  const Event = new GraphQLObjectType({
    name: "Event",
    fields: { text: { type: GraphQLString, resolve: (e: { text: string }) => (calls.resolved++, e.text) } },
  });
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({
      name: "Subscription",
      fields: { events: { type: Event, subscribe: () => pubsub.subscribe("events"), resolve: (e: unknown) => e } },
    }),
  });
  const subscribe = createSharedSubscribe((args) => `${(args.contextValue as { viewer: string }).viewer}`);
  const open = async (viewer: string) =>
    (await subscribe({ schema, document: parse("subscription { events { text } }"), contextValue: { viewer } } as ExecutionArgs)) as AsyncIterableIterator<ExecutionResult>;
  return { pubsub, calls, open };
}

test("executes each event once for subscribers with one key, and hands each the same result", async () => {
  const { pubsub, calls, open } = setup();
  const subscribers = await Promise.all([open("alice"), open("alice"), open("alice")]);
  pubsub.publish("events", { text: "one" });
  const results = await Promise.all(subscribers.map((s) => s.next()));
  assert.equal(JSON.parse(JSON.stringify(results[0].value)), { data: { events: { text: "one" } } });
  assert.ok(results.every((r) => r.value === results[0].value), "one result object for all");
  assert.is(calls.resolved, 1);
  await Promise.all(subscribers.map((s) => s.return!()));
  assert.is(pubsub.subscriberCount("events"), 0, "return() reaches the source");
});

test("executes once per key: another viewer gets its own execution", async () => {
  const { pubsub, calls, open } = setup();
  const subscribers = await Promise.all([open("alice"), open("bob")]);
  pubsub.publish("events", { text: "two" });
  await Promise.all(subscribers.map((s) => s.next()));
  assert.is(calls.resolved, 2);
  await Promise.all(subscribers.map((s) => s.return!()));
});

test.run();
