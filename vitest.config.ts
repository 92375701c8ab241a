import { defineConfig } from 'vitest/config';

// Two projects: fast unit/HTTP tests, and end-to-end tests that drive the real Pulumi CLI
// (slower, so they get longer timeouts and run one file at a time to spare the 2-core CI box).
export default defineConfig({
  test: {
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
