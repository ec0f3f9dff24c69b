import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsOf, startWorld, submitExample, type E2eWorld } from './support';

let world: E2eWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/** The product's heartbeat budget (HeartbeatSeconds 300 for a beat every 60 s: five beats), scaled down 30×. */
const HEARTBEAT = { heartbeatSeconds: 2, heartbeatTimeoutMs: 10_000 } as const;

describe('local backend: a script that pegs every core', () => {
  it('trains to SUCCEEDED on one attempt: the agent, above the script in priority, never misses its heartbeat', async () => {
    world = await startWorld(HEARTBEAT);
    const cores = availableParallelism();
    const submitted = await submitExample(world, { epochs: 10, min_epoch_seconds: 1, busy_cores: cores });

    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status, record.statusReason).toBe('SUCCEEDED');
    // No false interruption: no heartbeat timeout, no Instance.Lost or NotReady counted.
    expect(record.interruptions).toBe(0);
    expect(record.attempts, JSON.stringify(record.attempts, null, 1)).toMatchObject([{ attempt: 1, endReason: 'SUCCEEDED' }]);
    const epochs = (await metricsOf(world, submitted.runId)).filter((m) => typeof m.epoch === 'number').map((m) => m.epoch);
    expect(epochs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  }, 300_000);
});
