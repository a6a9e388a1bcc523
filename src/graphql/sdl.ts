/** The schema as SDL, exactly as committed at schema/schema.graphql. */
import { printSchema } from "graphql";
import { createSchema } from "./schema.js";

export async function emitSdl(): Promise<string> {
  return `# Generated from the resolvers by \`npm run schema\`; do not edit.\n\n${printSchema(await createSchema())}\n`;
}
