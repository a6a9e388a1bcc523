import { describe, expect, it } from "vitest";
import { parseToolDefinition } from "./tool-definition";

describe("pasted tool definitions", () => {
  it("reads YAML", () => {
    const parsed = parseToolDefinition(`name: cohort-stats\nversion: "1.2.0"\nexecutable: /opt/fem/tools/cohort-stats\nargs:\n  - { id: cohort, type: STRING, position: 0 }\noutputs: ["out/*.csv"]\n`);
    expect(parsed).toEqual({
      ok: true,
      input: { name: "cohort-stats", version: "1.2.0", executable: "/opt/fem/tools/cohort-stats", args: [{ id: "cohort", type: "STRING", position: 0 }], outputs: ["out/*.csv"] },
    });
  });

  it("reads JSON", () => {
    expect(parseToolDefinition('{"name":"t","version":"1","executable":"node"}')).toEqual({ ok: true, input: { name: "t", version: "1", executable: "node" } });
  });

  it("says why it cannot use the text", () => {
    expect(parseToolDefinition("  ")).toMatchObject({ ok: false, problem: /Paste/ });
    expect(parseToolDefinition("name: [unclosed")).toMatchObject({ ok: false, problem: /Not valid JSON or YAML/ });
    expect(parseToolDefinition("- a\n- b")).toMatchObject({ ok: false, problem: /mapping/ });
    expect(parseToolDefinition("name: a\nname: b")).toMatchObject({ ok: false, problem: /Not valid/ });
    expect(parseToolDefinition("name: t\nversion: 1.0\nexecutable: x")).toMatchObject({ ok: false, problem: /quote it/ });
  });
});
