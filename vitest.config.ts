import { defineConfig } from 'vitest/config';

// Two projects: pure-logic unit tests run in parallel; integration tests spawn
// redis-server, the simulator and worker processes, so they run one file at a time
// (the machine has 2 cores).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
