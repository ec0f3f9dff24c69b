import { afterEach, describe, expect, it } from 'vitest';
import { processesOf, startWorld, submitExample, waitFor, waitForCheckpoint, type E2eWorld } from './support';

/**
 * Provision on warning (docs/recovery.md): the next attempt's instance is launched on the spot
 * warning, prepared while the old one checkpoints, and adopted by the run; every race ends with
 * one instance per attempt and nothing left running.
 */
let world: E2eWorld | undefined;

/** Generous: the first attempt boots and copies its data before it trains. */
const CHECKPOINT_WAIT_MS = 180_000;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('local backend: the replacement starts on the warning', () => {
  it('launches attempt 2 on the warning and the run adopts it: one instance per attempt, the timeline recorded', async () => {
    world = await startWorld();
    const submitted = await submitExample(world, { epochs: 12, min_epoch_seconds: 0.7, hold_after_epoch: 2 });
    await waitForCheckpoint(world, submitted.runId, CHECKPOINT_WAIT_MS);

    const interruption = await world.backend.interrupt(submitted.runId, { graceMs: 90_000 });
    const launchedOnWarning = await waitFor('the replacement', async () => {
      const record = await world?.backend.store.get(submitted.runId);
      return record?.attempts[0]?.replacement;
    });
    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(1);
    const [first, second] = record.attempts;
    expect(first).toMatchObject({ attempt: 1, instanceId: interruption.instanceId, endReason: 'SPOT_INTERRUPTED' });
    expect(first?.replacement).toMatchObject({ attempt: 2, instanceId: launchedOnWarning.instanceId });
    expect(first?.replacement?.releasedAt).toBeUndefined();
    expect(second).toMatchObject({ attempt: 2, instanceId: launchedOnWarning.instanceId, endReason: 'SUCCEEDED' });
    expect(second?.resumeFrom).toMatch(/\/checkpoints\/0001-\d{6}\/$/);
    // The timeline: warning, then the checkpoint complete, then training on the replacement.
    expect(first?.warnedAt).toBeDefined();
    expect(first?.checkpointCompletedAt).toBeDefined();
    expect(Date.parse(second?.trainingStartedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(first?.checkpointCompletedAt ?? ''));
    // Only two instances were ever launched for the run.
    const launched = new Set(record.attempts.map((a) => a.instanceId));
    expect(launched.size).toBe(2);
    expect(await processesOf(record)).toEqual([]);
    expect(await world.backend.compute.listTaggedInstances()).toEqual([]);
  }, 400_000);

  it('keeps the sequential path when recovery.provisionOnWarning is false: nothing is launched before the checkpoint', async () => {
    world = await startWorld();
    const submitted = await world.backend.submit({
      spec: { ...(await import('../../examples/linear/prepare')).exampleSpec(world.example, { hidden: 8, epochs: 10, min_epoch_seconds: 0.7, hold_after_epoch: 2 }), recovery: { provisionOnWarning: false } },
    });
    await waitForCheckpoint(world, submitted.runId, CHECKPOINT_WAIT_MS);

    await world.backend.interrupt(submitted.runId, { graceMs: 90_000 });
    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.attempts).toHaveLength(2);
    expect(record.attempts[0]?.replacement).toBeUndefined();
    expect(await processesOf(record)).toEqual([]);
  }, 400_000);

  it('hands over on a rebalance recommendation with preProvisionOnRebalance alone: the attempt trains on until its replacement is ready, then moves onto it', async () => {
    world = await startWorld();
    const submitted = await world.backend.submit({
      spec: { ...(await import('../../examples/linear/prepare')).exampleSpec(world.example, { hidden: 8, epochs: 12, min_epoch_seconds: 0.7, hold_after_epoch: 2 }), recovery: { preProvisionOnRebalance: true } },
    });
    const training = await waitForCheckpoint(world, submitted.runId, CHECKPOINT_WAIT_MS);
    const trainingOn = training.attempts[0]?.instanceId ?? '';

    const [delivered] = await world.backend.router.emitRebalanceRecommendation(trainingOn);
    expect(delivered?.result).toMatchObject({ action: 'replacement-requested', instanceId: trainingOn, attempt: 1 });
    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(1);
    const [first, second] = record.attempts;
    expect(first).toMatchObject({ attempt: 1, instanceId: trainingOn, endReason: 'SPOT_INTERRUPTED' });
    expect(first?.replacement).toMatchObject({ attempt: 2, trigger: 'rebalance', dataReadyAt: expect.any(String) });
    expect(first?.replacement?.releasedAt).toBeUndefined();
    // Attempt 1 saved only once its replacement was ready: it trained on meanwhile.
    expect(Date.parse(first?.checkpointCompletedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(first?.replacement?.dataReadyAt ?? ''));
    expect(second).toMatchObject({ attempt: 2, instanceId: first?.replacement?.instanceId, endReason: 'SUCCEEDED' });
    expect(second?.resumeFrom).toMatch(/\/checkpoints\/0001-\d{6}\/$/);
    // Two instances in all: the replacement was adopted, nothing else launched.
    expect((await world.backend.compute.launchedFor(submitted.runId)).map((i) => i.attempt)).toEqual([1, 2]);
    expect(await processesOf(record)).toEqual([]);
    expect(await world.backend.compute.listTaggedInstances()).toEqual([]);
  }, 400_000);

  it('a spot warning while the handover prepares its replacement: the run checkpoints at once and still moves onto that replacement, one instance per attempt', async () => {
    world = await startWorld();
    const submitted = await world.backend.submit({
      spec: { ...(await import('../../examples/linear/prepare')).exampleSpec(world.example, { hidden: 8, epochs: 12, min_epoch_seconds: 0.7, hold_after_epoch: 2 }), recovery: { preProvisionOnRebalance: true } },
    });
    const training = await waitForCheckpoint(world, submitted.runId, CHECKPOINT_WAIT_MS);
    const trainingOn = training.attempts[0]?.instanceId ?? '';

    await world.backend.router.emitRebalanceRecommendation(trainingOn);
    const launched = await waitFor('the replacement launched on the recommendation', async () => (await world?.backend.store.get(submitted.runId))?.attempts[0]?.replacement);
    // The warning for attempt 1's instance itself: should the handover have won the race after
    // all, it finds that attempt gone and changes nothing, and the outcome is the same.
    await world.backend.router.emitSpotInterruptionWarning(trainingOn);
    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(1);
    const [first, second] = record.attempts;
    expect(first).toMatchObject({ endReason: 'SPOT_INTERRUPTED', warnedAt: expect.any(String) });
    expect(first?.replacement).toMatchObject({ instanceId: launched.instanceId, trigger: 'rebalance' });
    expect(second).toMatchObject({ attempt: 2, instanceId: launched.instanceId, endReason: 'SUCCEEDED' });
    expect((await world.backend.compute.launchedFor(submitted.runId)).map((i) => i.attempt)).toEqual([1, 2]);
    expect(await processesOf(record)).toEqual([]);
    expect(await world.backend.compute.listTaggedInstances()).toEqual([]);
  }, 400_000);
});
