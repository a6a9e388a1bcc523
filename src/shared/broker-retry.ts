/** RabbitMQ settings both sides use. */

/**
 * Rascal's backoff for reconnecting a connection and re-subscribing a consumer: 0.5 s, doubling up
 * to 5 s. Rascal copies its configuration, so sharing this object is safe.
 */
export const BROKER_RETRY = { min: 500, max: 5_000, factor: 2, strategy: "exponential" } as const;
