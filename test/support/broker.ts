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
    },
  };
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
