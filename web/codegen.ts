/**
 * Typed operations from the committed SDL: every `graphql(...)` document in src/ gets its types in
 * src/gql/, except the admin pages' (src/api/admin-operations.ts), typed into src/gql-admin/. The
 * client preset's `graphql()` holds every document of its output, so the admin operations get their
 * own: they load with the admin pages, not with the first page.
 */
import type { CodegenConfig } from "@graphql-codegen/cli";

const ADMIN_OPERATIONS = "src/api/admin-operations.ts";

const output = (documents: string[]) =>
  ({
    documents,
    preset: "client",
    presetConfig: { fragmentMasking: false },
    config: {
      useTypeImports: true,
      enumsAsTypes: true,
      scalars: { DateTime: "string", JSON: "unknown", JSONObject: "Record<string, unknown>" },
    },
  }) as const;

const config: CodegenConfig = {
  schema: "../schema/schema.graphql",
  ignoreNoDocuments: false,
  generates: {
    "src/gql/": output(["src/**/*.{ts,tsx}", "!src/gql/**", "!src/gql-admin/**", `!${ADMIN_OPERATIONS}`]),
    "src/gql-admin/": output([ADMIN_OPERATIONS]),
  },
  silent: true,
};

export default config;
