/** The artifacts domain: the output files runs leave on their nodes, their release policy and decisions. */
export { Artifact, ArtifactDecision, ArtifactState, ReleasePolicy } from "./artifact.entity.js";
export { ArtifactResolver, artifactDownloadPath, ARTIFACTS_PATH, RunOutputsResolver, UsageReleasedResolver } from "./artifact.resolver.js";
export { applyNodeDecisions, artifactsByRunIds, AUTO_DECIDER, decideArtifactRelease, downloadableArtifact, MAX_COMMENT_CHARS, recordManifests } from "./artifact.service.js";
export { createDirectoryStore, type ArtifactStore, type StoredFile } from "./artifact-store.js";
export { askForStalledTransfers, chunkCount, expireArtifacts, failLostOutputs, MAX_CHECKSUM_FAILURES, receiveChunks, type ChunkOutcome } from "./transfer.service.js";
export { parseRange, serveArtifact, type DownloadDeps } from "./artifact.download.js";
export { createInputServer, type InputChunkOut, type InputServer, type InputServerDeps } from "./input-delivery.service.js";
