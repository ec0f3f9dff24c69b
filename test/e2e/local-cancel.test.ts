import { afterEach, describe, expect, it } from 'vitest';
import { metricsOf, processesOf, startWorld, submitExample, waitFor, type E2eWorld } from './support';

let world: E2eWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('local backend: cancel', () => {
  it('cancels a training run: CANCELLED, instance terminated, no process of it left', async () => {
    world = await startWorld();
    const submitted = await submitExample(world, { epochs: 40, min_epoch_seconds: 0.5 });
    // TRAINING, and the script has reported a metric, so its processes run on the instance before
    // the cancel. (TRAINING alone is set before the launch command is sent: the processes found
    // then may be the data copy's last ones, gone a moment later.)
    const training = await waitFor('the run to train', async () => {
      if (world === undefined) return undefined;
      const record = await world.backend.store.get(submitted.runId);
      if (record?.status !== 'TRAINING' || (await metricsOf(world, submitted.runId)).length === 0) return undefined;
      return (await processesOf(record)).length > 0 ? record : undefined;
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
