/** The rule of a node's tool allow-list. */

/** True when `allowList` is empty or has an entry `name` or `name@version` matching the tool. */
export function isToolAllowed(allowList: readonly string[], tool: { name: string; version: string }): boolean {
  if (allowList.length === 0) return true;
  const ref = `${tool.name}@${tool.version}`;
  return allowList.some((entry) => entry === tool.name || entry === ref);
}
