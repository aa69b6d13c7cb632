import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Suites start real servers and move tens of MiB; two cores do not gain from more parallelism.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
