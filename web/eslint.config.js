// The dashboard's lint: ESLint's and typescript-eslint's recommended rules plus the React hooks rules.
// Syntactic rules only (no type information), so `npm run lint` stays a few seconds.
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "src/gql/", "src/gql-admin/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  reactHooks.configs.flat["recommended-latest"],
  {
    files: ["**/*.{ts,tsx}"],
    rules: {
      // Missing dependencies are real bugs here: fail the lint instead of warning.
      "react-hooks/exhaustive-deps": "error",
    },
  },
);
