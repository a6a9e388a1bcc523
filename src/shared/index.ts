/**
 * Small utilities the orchestrator and the agent both use. Nothing here imports from the rest of
 * `src/`, so either side may depend on it.
 */
export { BROKER_RETRY } from "./broker-retry.js";
export { errorCode, toError } from "./errors.js";
export { TimeoutError, withTimeout } from "./timeout.js";
export { isToolAllowed } from "./tools.js";
export { maskUrl, vhostOf } from "./urls.js";
export { amqpUrlListProblems, amqpUrlsOf, splitUrlList } from "./amqp-urls.js";
export { fitsPgInt, NUL_REPLACEMENT, oneLine, PG_INT_MAX, PG_INT_MIN, replaceNul, replaceNulDeep } from "./text.js";
export { canonicalJson } from "./canonical-json.js";
export { DIGEST_PATTERN, toolDefinition, toolDigest, type ToolArgDefinition, type ToolDefinition, type ToolDefinitionSource } from "./tool-digest.js";
export { argvTemplateProblem, inArgvOrder } from "./tool-template.js";
export { referencesSecrets, SECRET_NAME_PATTERN, secretEnvOf, secretNames, secretRefProblem, substituteSecrets } from "./secret-refs.js";
export { AMQP_TLS_SETTINGS, amqpSocketOptions, amqpTlsHint, amqpTlsProblems, NO_AMQP_TLS_FILES, readAmqpTls, readPublicFile, type AmqpTls, type AmqpTlsFiles, type AmqpTlsProblem, type TlsFileReader } from "./amqp-tls.js";
