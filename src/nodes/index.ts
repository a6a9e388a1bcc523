/** The nodes domain: registration, admin state, heartbeats and the sweep of silent nodes. */
export { nodeRowToSnapshot, nodeSnapshot, recordHeartbeats } from "./heartbeat.js";
export { Connectivity, Node, NodeAdminState } from "./node.entity.js";
export { NodeResolver, RunNodeResolver } from "./node.resolver.js";
export { getNode, listNodes, registerNode, rotateNodeCredential, setNodeAdminState, validateLabels, validateNodeId, type NodeBrokerAccess } from "./node.service.js";
export { createNodeSweeper, type SweeperOptions } from "./sweeper.js";
export { NodeOperator } from "./node-operator.entity.js";
export { grantNodeOperator, revokeNodeOperator } from "./node.service.js";
export { removeNode, type NodeRemovalBroker } from "./node-removal.js";
