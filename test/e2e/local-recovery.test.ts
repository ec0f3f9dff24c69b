import { afterEach, describe, expect, it } from 'vitest';
import { metricsOf, processesOf, startWorld, submitExample, waitFor, waitForCheckpoint, type E2eWorld } from './support';

let world: E2eWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('local backend: recovery', () => {
  it('carries a run through one spot interruption: two attempts, the second resumed from a checkpoint', async () => {
    world = await startWorld();
    const submitted = await submitExample(world, { epochs: 14, min_epoch_seconds: 0.7, hold_after_epoch: 2 });
    await waitForCheckpoint(world, submitted.runId);

    const interruption = await world.backend.interrupt(submitted.runId, { graceMs: 15_000 });
    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(1);
    expect(record.attempts).toHaveLength(2);
    expect(record.attempts[0]).toMatchObject({ attempt: 1, instanceId: interruption.instanceId, endReason: 'SPOT_INTERRUPTED' });
    expect(record.attempts[1]).toMatchObject({ attempt: 2, endReason: 'SUCCEEDED' });
    expect(record.attempts[1]?.resumeFrom).toMatch(new RegExp(`^s3://.*/runs/${submitted.runId}/checkpoints/0001-\\d{6}/$`));
    const metrics = await metricsOf(world, submitted.runId);
    const resumedAfter = metrics.find((m) => m.attempt === 2 && typeof m.resumed_from_epoch === 'number')?.resumed_from_epoch;
    expect(resumedAfter).toBeGreaterThanOrEqual(1);
    // The second attempt trained only the epochs after the checkpoint, up to the last one.
    const secondEpochs = metrics.filter((m) => m.attempt === 2 && typeof m.epoch === 'number').map((m) => m.epoch);
    expect(secondEpochs[0]).toBe(Number(resumedAfter) + 1);
    expect(secondEpochs.at(-1)).toBe(14);
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it('keeps a run through a control-plane restart mid-training: the same attempt completes', async () => {
    world = await startWorld();
    const submitted = await submitExample(world, { epochs: 20, min_epoch_seconds: 0.7 });
    // Mid-training: the first epoch's metrics row is in S3 (shipped live, within a second of its print).
    const before = await waitFor(`an epoch of ${submitted.runId}`, async () => {
      const record = await world?.backend.store.get(submitted.runId);
      if (record?.status !== 'TRAINING' || world === undefined) return undefined;
      return (await metricsOf(world, submitted.runId)).some((m) => typeof m.epoch === 'number') ? record : undefined;
    });

    await world.backend.stop();
    const restarted = await world.restart();
    expect(restarted.resumed).toEqual([submitted.runId]);
    const record = await restarted.waitForRun(submitted.runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.createdAt).toBe(before.createdAt);
    // The agent kept training on the same instance; its callbacks reached the resumed execution.
    expect(record.attempts).toMatchObject([{ attempt: 1, instanceId: before.attempts[0]?.instanceId, endReason: 'SUCCEEDED' }]);
    const metrics = await metricsOf(world, submitted.runId);
    expect(metrics.filter((m) => typeof m.epoch === 'number').map((m) => m.epoch)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);
});
