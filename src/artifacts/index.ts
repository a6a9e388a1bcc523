/** The artifacts domain: the output files runs leave on their nodes, their release policy and decisions. */
export { Artifact, ArtifactDecision, ArtifactState, ReleasePolicy } from "./artifact.entity.js";
export { ArtifactResolver, RunOutputsResolver } from "./artifact.resolver.js";
export { applyNodeDecisions, artifactsByRunIds, AUTO_DECIDER, decideArtifactRelease, MAX_COMMENT_CHARS, recordManifests } from "./artifact.service.js";
