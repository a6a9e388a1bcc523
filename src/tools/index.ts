/** The tools domain: registering versioned tools and turning a command template into argv. */
export { buildArgv, typeProblem } from "./command.js";
export { ArgType, Tool, ToolArg } from "./tool.entity.js";
export { ToolArgResolver, ToolResolver } from "./tool.resolver.js";
export { getTool, listTools, parseToolRef, registerTool } from "./tool.service.js";
