/** The audit log: an append-only, hash-chained record of every mutation's outcome and every denial (`auditEvents`, `auditChain`). */
export { AuditEvent, AuditOutcome } from "./audit-event.entity.js";
export { verifyAuditChain, type AuditChainReport, type VerifyOptions } from "./audit-chain.js";
export { AuditEventResolver } from "./audit.resolver.js";
export {
  ANONYMOUS_ACTOR,
  appendAuditEvent,
  listAuditEvents,
  recordAuditEvent,
  SYSTEM_ACTOR,
  type AuditEventFilter,
  type AuditEventInput,
} from "./audit.service.js";
