/** Statements as knex reports them, made runnable under EXPLAIN: bindings inlined as literals. */

/** `sql` with its bindings (`?` or `$n`) written in as SQL literals (PostgreSQL coerces an untyped literal where it is used). */
export function inlineBindings(sql: string, bindings: unknown[]): string {
  const literal = (v: unknown) => {
    if (v === null || v === undefined) return "null";
    const text = v instanceof Date ? v.toISOString() : typeof v === "object" ? JSON.stringify(v) : String(v);
    return `'${text.replace(/'/g, "''")}'`;
  };
  let next = 0;
  return sql.replace(/\$(\d+)|\?(?!\|)/g, (match, n: string | undefined) => (n ? literal(bindings[Number(n) - 1]) : literal(bindings[next++])));
}

/** A node of a JSON plan, with the fields the plan checks read. */
export interface PlanNode {
  "Node Type"?: string;
  "Relation Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
  Plans?: PlanNode[];
}

/** Every node of a plan, subplans included. */
export function planNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(planNodes)];
}
