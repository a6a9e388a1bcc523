import "reflect-metadata";
import { readFile } from "node:fs/promises";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { emitSdl } from "../../src/graphql/sdl.js";

const test = suite("committed SDL");

test("schema/schema.graphql matches the schema the code emits (run `npm run schema` after changing it)", async () => {
  const committed = await readFile(new URL("../../../schema/schema.graphql", import.meta.url), "utf8");
  assert.fixture(committed, await emitSdl());
});

test("the schema names the operations the design promises", async () => {
  const sdl = await emitSdl();
  for (const name of ["registerNode", "setNodeAdminState", "registerTool", "submitWorkflow", "cancelTask", "cancelWorkflow", "runUpdated", "workflowEvents", "runLogs", "nodeUpdated", "taskLogs"]) {
    assert.ok(sdl.includes(`${name}(`), `missing ${name}`);
  }
});

test.run();
