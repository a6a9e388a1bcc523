/** Writes schema/schema.graphql from the code (`npm run schema`). */
import "reflect-metadata";
import { mkdir, writeFile } from "node:fs/promises";
import { emitSdl } from "../src/graphql/sdl.js";

await mkdir("schema", { recursive: true });
await writeFile("schema/schema.graphql", await emitSdl());
console.log("wrote schema/schema.graphql");
