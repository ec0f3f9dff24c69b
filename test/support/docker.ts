import { probeLocalDocker, type LocalDocker } from '../../local/docker-env';

/**
 * The Docker engine and registry of `scripts/docker-test-env.sh start`, for the container tests.
 * In CI (CI=true) a missing engine fails the test file; elsewhere the file's tests are skipped
 * with a loud reason that says what to start.
 */
export async function dockerForTests(): Promise<LocalDocker | undefined> {
  const probe = await probeLocalDocker();
  if (probe.available) return probe.docker;
  if (process.env.CI === 'true') throw new Error(`The Docker tests need a Docker engine in CI. ${probe.reason}`);
  console.warn(`\n${'!'.repeat(100)}\n!! SKIPPING the Docker tests: ${probe.reason}\n${'!'.repeat(100)}\n`);
  return undefined;
}
