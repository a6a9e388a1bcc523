/**
 * `GET /ready` (200 only when PostgreSQL answers, every migration is applied and the RabbitMQ
 * connection is up; else 503 with the reasons) and `GET /metrics` (Prometheus text, behind a
 * bearer token when one is configured). `/health` stays the liveness probe in the GraphQL server.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type http from "node:http";
import type { MikroORM } from "@mikro-orm/postgresql";
import { toError, withTimeout } from "../shared/index.js";
import type { Logger } from "../logger.js";
import type { OrchestratorMetrics } from "./orchestrator-metrics.js";

/** Longest a readiness check waits for PostgreSQL. @default 2_000 // 2 seconds */
const READY_CHECK_TIMEOUT_MS = 2_000;

export interface Readiness {
  ready: boolean;
  checks: { postgres: string; migrations: string; rabbitmq: string };
}

export interface ReadinessDeps {
  orm: MikroORM;
  brokerConnected(): boolean;
}

/** Checks each dependency; "ok" or why not, per check. Never throws. */
export async function checkReadiness(deps: ReadinessDeps): Promise<Readiness> {
  const checks = { postgres: "ok", migrations: "ok", rabbitmq: "ok" };
  try {
    await withTimeout(deps.orm.em.fork().getConnection().execute("select 1"), READY_CHECK_TIMEOUT_MS, `no answer within ${READY_CHECK_TIMEOUT_MS} ms`);
    try {
      const pending = await withTimeout(deps.orm.getMigrator().getPendingMigrations(), READY_CHECK_TIMEOUT_MS, `no answer within ${READY_CHECK_TIMEOUT_MS} ms`);
      if (pending.length > 0) checks.migrations = `${pending.length} pending: ${pending.map((m) => m.name).join(", ")} (npm run migrate)`;
    } catch (err) {
      checks.migrations = `cannot read the applied migrations: ${toError(err).message}`;
    }
  } catch (err) {
    checks.postgres = `unreachable: ${toError(err).message}`;
    checks.migrations = "unknown (PostgreSQL is unreachable)";
  }
  if (!deps.brokerConnected()) checks.rabbitmq = "not connected (reconnecting)";
  return { ready: Object.values(checks).every((c) => c === "ok"), checks };
}

export type HttpRoute = (req: http.IncomingMessage, res: http.ServerResponse) => void;

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** Routes for the GraphQL server's HTTP listener: `/ready` and `/metrics`. */
export function createProbeRoutes(deps: ReadinessDeps & { metrics: OrchestratorMetrics; metricsToken: string | null }, logger: Logger): Record<string, HttpRoute> {
  const expected = deps.metricsToken === null ? null : digest(`Bearer ${deps.metricsToken}`);
  return {
    "/ready": (_req, res) => {
      void checkReadiness(deps).then((readiness) => {
        res.writeHead(readiness.ready ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
        res.end(JSON.stringify({ status: readiness.ready ? "ready" : "not ready", ...readiness.checks }));
      });
    },
    "/metrics": (req, res) => {
      if (expected && !timingSafeEqual(digest(req.headers.authorization ?? ""), expected)) {
        res.writeHead(401, { "content-type": "text/plain", "www-authenticate": 'Bearer realm="fem-metrics"' });
        res.end("metrics need Authorization: Bearer <FEM_METRICS_TOKEN>\n");
        return;
      }
      deps.metrics.scrape().then(
        (text) => {
          res.writeHead(200, { "content-type": deps.metrics.contentType, "cache-control": "no-store" });
          res.end(text);
        },
        (err: unknown) => {
          logger.error("metrics scrape failed", { error: toError(err).message });
          res.writeHead(500, { "content-type": "text/plain" });
          res.end("metrics scrape failed\n");
        },
      );
    },
  };
}
