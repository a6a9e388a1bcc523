/** The logs domain: storing log lines in bulk, replay-then-live following, log queries and subscriptions. */
export { followLogs, type FollowOptions, type LogBatchPayload } from "./log-follower.js";
export { LogLine } from "./log-line.entity.js";
export { LogResolver, RunLogsResolver } from "./log.resolver.js";
export { LogCapContention, readLogs, storeLogBatches } from "./log.service.js";
export { LogBatch, LogLineConnection } from "./log.types.js";
