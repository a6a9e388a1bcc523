/**
 * Each node's own RabbitMQ user, kept through the management HTTP API: created with the node's
 * credential at registration, its permissions withdrawn (and its connections closed) while the
 * node is DISABLED, its password replaced on rotation. The orchestrator's own AMQP user must be a
 * RabbitMQ `administrator` for this (docs/security.md says why the management API and not the HTTP
 * auth backend).
 */
import { nodeBrokerPermissions, nodeBrokerUser } from "./contracts.js";
import { amqpUrlsOf, toError, vhostOf } from "../shared/index.js";
import { UnavailableError } from "../kernel/index.js";

export interface BrokerUsers {
  /** The broker user name of a node on this orchestrator's vhost. */
  userOf(nodeId: string): string;
  /**
   * Creates the node's user or replaces its password, grants its permissions when `active` (else
   * withdraws them) and closes its open connections, which were opened with the previous password.
   */
  provision(nodeId: string, password: string, active: boolean): Promise<void>;
  /** Withdraws the node's permissions and closes its connections: it can neither stay nor come back. */
  revoke(nodeId: string): Promise<void>;
  /** Grants the node's permissions again (idempotent). */
  restore(nodeId: string): Promise<void>;
  /** Deletes the node's user (and with it its connections). */
  remove(nodeId: string): Promise<void>;
  /** Resolves when the API answers and our user may manage users; throws `BrokerManagementError` otherwise. */
  check(): Promise<void>;
}

export interface BrokerUsersSettings {
  amqpUrl: string;
  /** Other nodes of the cluster: without a `managementUrl`, each gives an API to fall back on. @default [] */
  amqpFailoverUrls?: string[];
  /** Base URL of the management API (`http://host:15672`), with or without `user:password@`; null derives it from `amqpUrl`. */
  managementUrl: string | null;
  /** Further management API URLs, tried in order when the one before is unreachable. @default [] */
  managementFailoverUrls?: string[];
  /** Bound on each API call. @default 10_000 */
  timeoutMs?: number;
}

/** The management API is unreachable or refuses us; `message` is one line saying what to do. */
export class BrokerManagementError extends UnavailableError {
  constructor(message: string, cause?: unknown) {
    super(message, cause);
    this.name = "BrokerManagementError";
  }
}

/** The management API's base URL and the Basic credentials to call it with. */
export function managementEndpoint(settings: Pick<BrokerUsersSettings, "amqpUrl" | "managementUrl">): { baseUrl: string; authorization: string } {
  const amqp = new URL(settings.amqpUrl);
  const target = new URL(settings.managementUrl ?? `${amqp.protocol === "amqps:" ? "https" : "http"}://${amqp.hostname}:15672`);
  const user = decodeURIComponent(target.username || amqp.username || "guest");
  const password = decodeURIComponent(target.password || amqp.password || "guest");
  target.username = "";
  target.password = "";
  const baseUrl = `${target.origin}${target.pathname.replace(/\/+$/, "")}/api`;
  return { baseUrl, authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` };
}

/**
 * Every management API of the cluster, in the order tried: the URLs given, else one derived from
 * each AMQP URL (`http://<host>:15672`, with that URL's user).
 */
export function managementEndpoints(settings: Pick<BrokerUsersSettings, "amqpUrl" | "amqpFailoverUrls" | "managementUrl" | "managementFailoverUrls">): { baseUrl: string; authorization: string }[] {
  if (settings.managementUrl !== null) {
    return [settings.managementUrl, ...(settings.managementFailoverUrls ?? [])].map((managementUrl) => managementEndpoint({ amqpUrl: settings.amqpUrl, managementUrl }));
  }
  return amqpUrlsOf(settings).map((amqpUrl) => managementEndpoint({ amqpUrl, managementUrl: null }));
}

/** Tries at closing a node's connections while some stay open, and the pause before the next (times the try). */
const CLOSE_ATTEMPTS = 3;
const CLOSE_RETRY_MS = 250;

export function createBrokerUsers(settings: BrokerUsersSettings): BrokerUsers {
  const vhost = vhostOf(settings.amqpUrl);
  const endpoints = managementEndpoints(settings);
  /** The endpoint that answered last: a cluster's users are the same on every node. */
  let preferred = 0;
  const timeoutMs = settings.timeoutMs ?? 10_000;
  const hintOf = (baseUrl: string) => `RabbitMQ's management API at ${baseUrl}`;

  /** The first endpoint's answer that is reachable (from the one that answered last); throws when none is. */
  async function reach(method: string, path: string, body: unknown): Promise<{ response: Response; hint: string }> {
    const failures: { baseUrl: string; why: string }[] = [];
    let last: unknown;
    for (let i = 0; i < endpoints.length; i++) {
      const index = (preferred + i) % endpoints.length;
      const { baseUrl, authorization } = endpoints[index]!;
      try {
        const response = await fetch(`${baseUrl}${path}`, {
          method,
          headers: { authorization, "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
        preferred = index;
        return { response, hint: hintOf(baseUrl) };
      } catch (err) {
        // fetch wraps the reason (ECONNREFUSED, a timeout…) in its `cause`.
        const cause = toError(err);
        const inner = cause.cause as { code?: string; message?: string } | undefined;
        failures.push({ baseUrl, why: inner?.code ?? inner?.message ?? cause.message });
        last = err;
      }
    }
    const where =
      failures.length === 1
        ? `${hintOf(failures[0]!.baseUrl)} is not reachable (${failures[0]!.why})`
        : `None of RabbitMQ's management APIs is reachable (${failures.map((f) => `${f.baseUrl}: ${f.why}`).join("; ")})`;
    throw new BrokerManagementError(`${where}. Enable it: rabbitmq-plugins enable rabbitmq_management; or set FEM_RABBITMQ_MANAGEMENT_URL.`, last);
  }

  async function call(method: string, path: string, body?: unknown, okStatuses: number[] = []): Promise<unknown> {
    const { response, hint } = await reach(method, path, body);
    const text = await response.text();
    if (!response.ok && !okStatuses.includes(response.status)) {
      const what = response.status === 401 ? "refused our credentials (the orchestrator's AMQP user must be a RabbitMQ administrator)" : `answered ${response.status} to ${method} ${path.split("/")[1]}`;
      throw new BrokerManagementError(`${hint} ${what}: ${text.slice(0, 200)}`);
    }
    return text === "" ? null : (JSON.parse(text) as unknown);
  }

  const enc = encodeURIComponent;
  const userOf = (nodeId: string) => nodeBrokerUser(vhost, nodeId);

  async function grant(nodeId: string): Promise<void> {
    const user = enc(userOf(nodeId));
    const permissions = nodeBrokerPermissions(nodeId);
    await call("PUT", `/permissions/${enc(vhost)}/${user}`, permissions.vhost);
    await call("PUT", `/topic-permissions/${enc(vhost)}/${user}`, permissions.topic);
  }

  async function withdraw(nodeId: string): Promise<void> {
    const user = enc(userOf(nodeId));
    await call("DELETE", `/permissions/${enc(vhost)}/${user}`, undefined, [404]);
    await call("DELETE", `/topic-permissions/${enc(vhost)}/${user}`, undefined, [404]);
  }

  /**
   * RabbitMQ answers 500 to the whole request when one of the user's connections goes away by itself
   * while it closes them (seen when 1,000 agents had just disconnected): what counts is that none is
   * left, so it looks, and tries again (bounded) only while some are.
   */
  async function closeConnections(nodeId: string): Promise<void> {
    const path = `/connections/username/${enc(userOf(nodeId))}`;
    for (let attempt = 1; ; attempt++) {
      try {
        await call("DELETE", path, undefined, [404]);
        return;
      } catch (err) {
        if (!(err instanceof BrokerManagementError)) throw err;
        const open = (await call("GET", path, undefined, [404])) as unknown[] | { error?: string } | null;
        if (!Array.isArray(open) || open.length === 0) return;
        if (attempt >= CLOSE_ATTEMPTS) throw err;
        await new Promise((resolve) => setTimeout(resolve, CLOSE_RETRY_MS * attempt));
      }
    }
  }

  return {
    userOf,

    async provision(nodeId, password, active) {
      await call("PUT", `/users/${enc(userOf(nodeId))}`, { password, tags: "" });
      if (active) await grant(nodeId);
      else await withdraw(nodeId);
      // Connections opened with the previous password stay authenticated until closed.
      await closeConnections(nodeId);
    },

    async revoke(nodeId) {
      await withdraw(nodeId);
      await closeConnections(nodeId);
    },

    restore: grant,

    async remove(nodeId) {
      await call("DELETE", `/users/${enc(userOf(nodeId))}`, undefined, [404]);
    },

    async check() {
      const me = (await call("GET", "/whoami")) as { name?: string; tags?: string[] | string } | null;
      const tags = Array.isArray(me?.tags) ? me.tags : String(me?.tags ?? "").split(",");
      if (!tags.includes("administrator")) {
        throw new BrokerManagementError(`${hintOf(endpoints[preferred]!.baseUrl)}: user ${me?.name ?? "?"} is not a RabbitMQ administrator, so it cannot give nodes their own broker users (rabbitmqctl set_user_tags ${me?.name ?? "USER"} administrator)`);
      }
    },
  };
}
