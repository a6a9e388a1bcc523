/**
 * The one catalogue of errors a client may see. Services throw these; the GraphQL layer turns
 * them into `extensions.code`, and the broker handler decides retry vs dead letter by `code`.
 */
export type ErrorCode =
  | "BAD_USER_INPUT"
  | "QUERY_TOO_COMPLEX"
  | "RATE_LIMITED"
  | "NOT_FOUND"
  | "CONFLICT"
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "UNAVAILABLE"
  | "INTERNAL";

export class AppError extends Error {
  readonly code: ErrorCode;
  /** Machine-readable facts, e.g. `{ argument: "count" }`; shown to clients in `extensions`. (Not named `details`: uvu reads that name from thrown errors.) */
  readonly facts: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AppError";
    this.code = code;
    this.facts = details;
  }

  /** True when the client may see the message (everything except INTERNAL). */
  get isPublic(): boolean {
    return this.code !== "INTERNAL";
  }
}

export class BadInputError extends AppError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("BAD_USER_INPUT", message, details);
  }

  static field(field: string, message: string, extra: Record<string, unknown> = {}): BadInputError {
    return new BadInputError(`${field}: ${message}`, { field, ...extra });
  }
}

export class NotFoundError extends AppError {
  static entity(entity: string, id: string): NotFoundError {
    return new NotFoundError("NOT_FOUND", `${entity} ${JSON.stringify(id)} does not exist`, { entity, id });
  }
}

export class ConflictError extends AppError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("CONFLICT", message, details);
  }
}

/** The caller's credentials are missing where required, malformed, unknown, expired or revoked; the message says which, never the credential. */
export class UnauthenticatedError extends AppError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super("UNAUTHENTICATED", message, details, options);
  }

  static because(reason: string, cause?: unknown): UnauthenticatedError {
    return new UnauthenticatedError(reason, {}, { cause });
  }
}

/** A dependency (database, broker) is away; the request may be retried. */
export class UnavailableError extends AppError {
  constructor(message: string, cause?: unknown) {
    super("UNAVAILABLE", message, {}, { cause });
  }
}

/** The caller is known but may not do this. */
export class ForbiddenError extends AppError {
  static action(action: string, needed: string): ForbiddenError {
    return new ForbiddenError("FORBIDDEN", `you may not ${action}: it needs ${needed}`, { needed });
  }
}

/** An operation over one of the API's cost limits (depth, aliases, cost, tokens); refused before it runs. */
export class QueryTooComplexError extends AppError {
  constructor(message: string, details: { limit: string; max: number; actual?: number }) {
    super("QUERY_TOO_COMPLEX", message, details);
  }
}

/**
 * The caller sent more mutations than its rate allows (`facts.retryAfterSeconds` says when to try
 * again), or holds as much as a fixed limit allows (`RateLimitedError.limit`).
 */
export class RateLimitedError extends AppError {
  constructor(message: string, retryAfterSeconds: number | null, facts: Record<string, unknown> = {}) {
    super("RATE_LIMITED", message, retryAfterSeconds === null ? facts : { retryAfterSeconds, ...facts });
  }

  /** A count limit reached (not a rate): `facts.limit` names it, `facts.max` is its value. */
  static limit(message: string, limit: string, max: number): RateLimitedError {
    return new RateLimitedError(message, null, { limit, max });
  }
}
