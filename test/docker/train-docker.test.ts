import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exampleSpec, prepareExample, type PreparedExample } from '../../examples/linear/prepare';
import { LOCAL_OWNER, startLocalBackend, type LocalBackend } from '../../local/runtime';
import { readMetrics } from '../../local/summary';
import type { RunRecord } from '../../shared/domain/run-record';
import { dockerForTests } from '../support/docker';
import { containersNamed, dockerLines } from './support';

// Containers on vfs storage: every start copies the image, seconds each, more under load.
vi.setConfig({ testTimeout: 600_000, hookTimeout: 120_000 });

const docker = await dockerForTests();

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe.skipIf(docker === undefined)('training in a container on a real Docker engine (local backend)', () => {
  let root: string;
  let backend: LocalBackend;
  let example: PreparedExample;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'runctl-docker-train-'));
    // The ASL's own heartbeat timeout (300 s), not the local 60 s: vfs container starts and AWS CLI
    // calls are slow on a loaded machine, and a recovery is not what these tests look at.
    backend = await startLocalBackend({ root, persist: false, docker, interruptGraceMs: 30_000, heartbeatTimeoutMs: 300_000 });
    example = await prepareExample(backend.s3, backend.services.bucket, { dataset: { rows: 1000 }, preferTorch: false });
  });
  afterAll(async () => {
    await backend?.stop({ terminateInstances: true });
    await rm(root, { recursive: true, force: true });
  });

  const containerOf = (runId: string, attempt: number) => `runctl-${runId}-${attempt}`;

  /** Resolves once the attempt's container runs on the engine. */
  function containerRunning(runId: string, attempt: number): Promise<string> {
    return waitFor(`the container of ${runId} attempt ${attempt}`, async () => {
      const running = await dockerLines(docker!, ['ps', '--filter', `name=^${containerOf(runId, attempt)}$`, '--format', '{{.Names}}']);
      return running[0];
    });
  }

  /** Resolves once no container of the run is left, running or stopped. */
  function noContainersOf(runId: string): Promise<true> {
    return waitFor(`the containers of ${runId} to be gone`, async () => ((await containersNamed(docker!, `runctl-${runId}-`)).length === 0 ? true : undefined), 60_000);
  }

  async function attemptLog(runId: string, attempt: number): Promise<string> {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const object = await backend.s3.send(new GetObjectCommand({ Bucket: backend.services.bucket, Key: `runs/${runId}/logs/attempt-${attempt}.log` }));
    return (await object.Body?.transformToString('utf8')) ?? '';
  }

  let image: string;

  it('builds the image of a docker: auto run, trains in it pulled by digest, checkpoints on the stop signal and resumes in a fresh container', async () => {
    const spec = { ...exampleSpec(example, { epochs: 12, hidden: 8, min_epoch_seconds: 1 }), docker: 'auto' };

    const submitted = await backend.submit({ spec });
    const runId = submitted.runId;
    await containerRunning(runId, 1);
    // Interrupted once the script has saved an epoch in its container: the agent uploads it on the
    // stop signal (waiting for the periodic upload to reach S3 could outlast a slow machine's run).
    const instanceId = (await backend.store.get(runId))?.attempts.at(-1)?.instanceId ?? '';
    const saved = join(backend.compute.sandbox(instanceId), 'opt', 'runctl', 'checkpoints', 'model.json');
    await waitFor('an epoch saved in the container', async () => (existsSync(saved) ? true : undefined));
    await backend.interrupt(runId);
    const record: RunRecord = await backend.waitForRun(runId);

    expect(record.status, record.statusReason).toBe('SUCCEEDED');
    expect(record.attempts).toHaveLength(2);
    const bundleSha = /([0-9a-f]{64})\.tar\.gz$/.exec(example.bundle)?.[1] ?? '';
    const built = await backend.images!.deps.catalog.getImage(LOCAL_OWNER, bundleSha);
    expect(built?.imageUri).toMatch(new RegExp(`^${docker!.registry.replace(/\./g, '\\.')}/runctl/training@sha256:[0-9a-f]{64}$`));
    image = built?.imageUri ?? '';

    // The attempt log as the agent wrote it on the (terminated) instance: the copy in S3 is the
    // last one uploaded, which a slow final upload may leave behind the stop.
    const first = readFileSync(join(backend.compute.sandbox(instanceId), 'opt', 'runctl', 'attempts', runId, '1', 'upload', 'logs', 'attempt-1.log'), 'utf8');
    const second = await attemptLog(runId, 2);
    expect(first).toContain(`training started in container ${containerOf(runId, 1)} from ${image}`);
    expect(first).toContain('docker.gpus auto: none');
    // SIGTERM went through docker kill and --init to the script, which saved its last epoch.
    expect(first).toMatch(/"event": "stopping", "checkpoint_epoch": \d+/);
    expect(second).toContain(`training started in container ${containerOf(runId, 2)} from ${image}`);
    const resumedAfter = Number(/"resumed_from_epoch": (\d+)/.exec(second)?.[1]);
    expect(resumedAfter).toBeGreaterThanOrEqual(1);

    // Losses continue: attempt 2 starts at the epoch after the checkpoint, and reaches the last.
    const metrics = await readMetrics(backend.s3, backend.services.bucket, runId);
    const epochs = (attempt: number) => metrics.filter((m) => m.attempt === attempt && typeof m.epoch === 'number').map((m) => Number(m.epoch));
    expect(epochs(2)[0]).toBe(resumedAfter + 1);
    expect(epochs(2).at(-1)).toBe(12);
    expect(Math.max(...epochs(1))).toBeGreaterThanOrEqual(resumedAfter);
    await noContainersOf(runId);
  });

  it('leaves no container behind after a cancel, a --force cancel or a killed instance', async () => {
    expect(image).toMatch(/@sha256:/);
    const spec = (name: string) => ({ ...exampleSpec(example, { epochs: 200, hidden: 8, min_epoch_seconds: 1 }, { name }), docker: { image } });
    const cancelled = await backend.submit({ spec: spec('cancelled') });
    const forced = await backend.submit({ spec: spec('forced') });
    const killed = await backend.submit({ spec: spec('killed') });
    await Promise.all([cancelled, forced, killed].map((r) => containerRunning(r.runId, 1)));

    await backend.cancel(cancelled.runId);
    await backend.cancel(forced.runId, { force: true });
    const instance = (await backend.store.get(killed.runId))?.attempts.at(-1)?.instanceId ?? '';
    await backend.compute.kill(instance);

    expect((await backend.waitForRun(cancelled.runId)).status).toBe('CANCELLED');
    expect((await backend.waitForRun(forced.runId)).status).toBe('CANCELLED');
    await noContainersOf(cancelled.runId);
    await noContainersOf(forced.runId);
    // The graceful cancel reached the script in its container.
    expect(await attemptLog(cancelled.runId, 1)).toMatch(/"event": "stopping"/);
    // The killed instance's container went with it, although the engine outlives the instance.
    await waitFor('the killed container to be gone', async () => ((await containersNamed(docker!, containerOf(killed.runId, 1))).length === 0 ? true : undefined), 60_000);
    await backend.cancel(killed.runId, { force: true });
    expect((await backend.waitForRun(killed.runId)).status).toBe('CANCELLED');
    await noContainersOf(killed.runId);
  });
});
