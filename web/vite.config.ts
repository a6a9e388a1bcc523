import { defineConfig } from "vitest/config";

export default defineConfig({
  // Served at / by the orchestrator; asset names carry a content hash so they may be cached for long.
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The strict CSP forbids inline scripts: no modulepreload polyfill, no inlined assets.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
