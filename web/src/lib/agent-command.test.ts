import { describe, expect, it } from "vitest";
import { agentStartCommand, shellQuote } from "./agent-command";

describe("the agent's start command", () => {
  it("quotes words so the shell expands nothing", () => {
    expect(shellQuote("fem_node_abc")).toBe("'fem_node_abc'");
    expect(shellQuote("a'b $(x)")).toBe(`'a'\\''b $(x)'`);
  });

  it("writes the credential to a private file and names the node and its capacity", () => {
    const command = agentStartCommand({ nodeId: "site-a", credential: "fem_node_s3cret", capacity: 4 });
    expect(command.split("\n")[0]).toBe("install -m 600 /dev/null /etc/fem/node.credential && printf '%s' 'fem_node_s3cret' > /etc/fem/node.credential");
    expect(command).toContain("FEM_NODE_ID='site-a' \\");
    expect(command).toContain("FEM_CAPACITY=4 \\");
    expect(command).toContain("FEM_NODE_CREDENTIAL_FILE=/etc/fem/node.credential");
    expect(command.split("\n").at(-1)).toBe("node dist/src/agent/main.js");
  });
});
