/**
 * The schema as SDL, exactly as committed at schema/schema.graphql. Types and fields are sorted:
 * type-graphql registers them in module-load order, which depends on who imported the code first.
 */
import { lexicographicSortSchema, printSchema } from "graphql";
import { createSchema } from "./schema.js";

export async function emitSdl(): Promise<string> {
  return `# Generated from the resolvers by \`npm run schema\`; do not edit.\n\n${printSchema(lexicographicSortSchema(await createSchema()))}\n`;
}
