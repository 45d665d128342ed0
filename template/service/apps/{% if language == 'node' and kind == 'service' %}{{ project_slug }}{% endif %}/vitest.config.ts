import { defineConfig } from "vitest/config";

export default defineConfig({
  ssr: {
    resolve: {
      // Workspace packages are imported from their TypeScript sources: no build before tests.
      conditions: ["workspace-source", "node"],
    },
  },
  test: {
    include: ["tests/**/*.test.ts"],
    reporters: ["default", "junit"],
    outputFile: { junit: "junit.xml" },
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      reporter: ["text", ["cobertura", { file: "../coverage.xml" }]],
    },
  },
});
