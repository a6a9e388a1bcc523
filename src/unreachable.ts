/** One-line, actionable errors for when PostgreSQL or RabbitMQ cannot be reached. */
import { amqpTlsHint, errorCode, maskUrl } from "./shared/index.js";

/** A required service is unreachable; `message` is one line telling how to start it. */
export class ServiceUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ServiceUnreachableError";
  }
}

function reason(err: unknown): string {
  const e = err as { code?: string; message?: string } | null;
  return e?.code ?? e?.message?.split("\n")[0] ?? String(err);
}

export function postgresUnreachable(databaseUrl: string, err: unknown): ServiceUnreachableError {
  return new ServiceUnreachableError(
    `PostgreSQL is not reachable at ${maskUrl(databaseUrl)} (${reason(err)}). Start it: docker-compose up -d postgres, or pg_ctlcluster <version> main start; or set DATABASE_URL.`,
    { cause: err },
  );
}

/** `amqpUrls`: the URL, or every node of the cluster that was tried. */
export function rabbitmqUnreachable(amqpUrls: string | readonly string[], err: unknown): ServiceUnreachableError {
  const where = (typeof amqpUrls === "string" ? [amqpUrls] : amqpUrls).map(maskUrl).join(", ");
  const tlsHint = amqpTlsHint(errorCode(err));
  if (tlsHint !== null) {
    return new ServiceUnreachableError(`TLS to RabbitMQ at ${where} failed (${reason(err)}): ${tlsHint}.`, { cause: err });
  }
  return new ServiceUnreachableError(
    `RabbitMQ is not reachable at ${where} (${reason(err)}). Start it: docker-compose up -d rabbitmq, or rabbitmq-server -detached; or set AMQP_URL.`,
    { cause: err },
  );
}
