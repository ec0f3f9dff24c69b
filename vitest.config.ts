import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    // Handlers log JSON lines through Powertools; tests read results, not logs.
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT', AWS_REGION: 'us-east-1' },
    hookTimeout: 60_000,
    // Two cores: the emulators and the agent's bash processes need the other one.
    maxWorkers: 2,
  },
});
