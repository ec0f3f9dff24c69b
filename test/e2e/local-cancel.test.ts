import { afterEach, describe, expect, it } from 'vitest';
import { processesOf, startWorld, submitExample, waitFor, type E2eWorld } from './support';

let world: E2eWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('local backend: cancel', () => {
  it('cancels a training run: CANCELLED, instance terminated, no process of it left', async () => {
    world = await startWorld();
    const submitted = await submitExample(world, { epochs: 40, min_epoch_seconds: 0.5 });
    // TRAINING, and the launch command's processes are running on the instance before the cancel.
    const training = await waitFor('the run to train', async () => {
      const record = await world?.backend.store.get(submitted.runId);
      return record?.status === 'TRAINING' && (await processesOf(record)).length > 0 ? record : undefined;
    });
    expect((await processesOf(training)).length).toBeGreaterThan(0);

    await world.backend.cancel(submitted.runId);
    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('CANCELLED');
    expect(record.attempts).toMatchObject([{ attempt: 1, endReason: 'CANCELLED' }]);
    const instanceId = record.attempts[0]?.instanceId ?? '';
    expect((await world.backend.compute.describe(instanceId))?.state).toBe('terminated');
    expect(await processesOf(record)).toEqual([]);
  }, 240_000);
});
