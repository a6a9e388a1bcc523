/** A throwaway RabbitMQ vhost per suite, made and removed with rabbitmqctl. */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run("rabbitmqctl", ["-q", ...args], { timeout: 60_000 });
  return stdout;
}

export interface TestVhost {
  name: string;
  /** AMQP URL of the vhost for guest/guest on loopback (override host with TEST_AMQP_BASE). */
  url: string;
  drop(): Promise<void>;
}

export async function createTestVhost(prefix = "fem_test"): Promise<TestVhost> {
  const name = `${prefix}_${randomBytes(4).toString("hex")}`;
  await rabbitmqctl("add_vhost", name);
  await rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*");
  const base = process.env.TEST_AMQP_BASE ?? "amqp://guest:guest@127.0.0.1:5672";
  let dropped = false;
  return {
    name,
    url: `${base}/${encodeURIComponent(name)}`,
    async drop() {
      if (dropped) return;
      dropped = true;
      await rabbitmqctl("delete_vhost", name).catch(() => undefined);
      await deleteNodeUsers(name).catch(() => undefined);
    },
  };
}

/** Base URL of the management API for guest on loopback (override with TEST_RABBITMQ_MANAGEMENT). */
export const MANAGEMENT_URL = process.env.TEST_RABBITMQ_MANAGEMENT ?? "http://guest:guest@127.0.0.1:15672";

/** Calls the management API as guest; returns the parsed answer (null when empty). */
export async function management(method: string, path: string, body?: unknown): Promise<unknown> {
  const base = new URL(MANAGEMENT_URL);
  const authorization = `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString("base64")}`;
  const response = await fetch(`${base.origin}/api${path}`, {
    method,
    headers: { authorization, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`management API ${method} ${path}: ${response.status} ${text.slice(0, 200)}`);
  return text === "" ? null : (JSON.parse(text) as unknown);
}

/** Deletes the broker users the orchestrator made for nodes on `vhost` (users span vhosts). */
async function deleteNodeUsers(vhost: string): Promise<void> {
  const users = (await management("GET", "/users")) as { name: string }[];
  for (const user of users.filter((u) => u.name.startsWith(`fem-node.${vhost}.`))) {
    await management("DELETE", `/users/${encodeURIComponent(user.name)}`).catch(() => undefined);
  }
}

/** `url` without its user and password (what an agent is given). */
export function withoutUser(url: string): string {
  const bare = new URL(url);
  bare.username = "";
  bare.password = "";
  return bare.toString();
}

/** Messages waiting in a queue of a vhost (0 when the queue does not exist). */
export async function queueDepth(vhost: string, queue: string): Promise<number> {
  const out = await rabbitmqctl("list_queues", "-p", vhost, "name", "messages");
  for (const line of out.split("\n")) {
    const [name, count] = line.trim().split(/\s+/);
    if (name === queue) return Number(count);
  }
  return 0;
}
