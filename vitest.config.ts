import { defineConfig } from 'vitest/config';

// Two projects: fast unit/HTTP tests, and end-to-end tests that drive the real Pulumi CLI
// (slower, so they get longer timeouts and run one file at a time to spare the 2-core CI box).
// .ci/run asks for a JSON report too, to print a plain "N passed, N failed" closing line.
const summaryFile = process.env.PULUMISCALE_TEST_REPORT;

export default defineConfig({
  test: {
    ...(summaryFile ? { reporters: ['default', 'json'], outputFile: { json: summaryFile } } : {}),
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/http/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts', 'test/pulumi/**/*.test.ts'],
          testTimeout: 240_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
