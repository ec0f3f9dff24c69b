import { defineConfig } from 'vitest/config';

/** The PyTorch example's contract test: needs `torch`, so it runs apart from `npm test` (see .ci/run). */
export default defineConfig({
  test: {
    include: ['test/examples/*.torch-test.ts'],
    testTimeout: 120_000,
  },
});
