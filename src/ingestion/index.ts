/** Ingestion: consumes node events (state reports, log lines, heartbeats) in batched transactions. */
export { createIngestion, type Ingestion, type IngestionDeps } from "./node-events.consumer.js";
export { createChunkIngestion, type ChunkIngestion, type ChunkIngestionDeps } from "./chunks.consumer.js";
