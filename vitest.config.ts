import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Every file has its own database and Redis prefix, so files run in parallel on every core
    // (vitest's default leaves one core idle, which on a 2-core machine is half of it).
    maxWorkers: Math.max(2, availableParallelism()),
    reporters: ['default'],
  },
});
