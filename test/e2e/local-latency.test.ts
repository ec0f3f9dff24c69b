import { afterEach, describe, expect, it } from 'vitest';
import { latencyModel } from '../../local/latency';
import { processesOf, startWorld, submitExample, type E2eWorld } from './support';

let world: E2eWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('local backend: a slow latency model', () => {
  it('waits for an instance that boots as slowly as the model says instead of declaring it not ready', async () => {
    // 20 s from RunInstances to SSM online: longer than the steps' 40 readiness checks at the shortest pause.
    world = await startWorld({ latency: latencyModel('instant', { launchMs: 6000, ssmOnlineMs: 14000 }) });
    const submitted = await submitExample(world, { epochs: 2 });

    const record = await world.backend.waitForRun(submitted.runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(0);
    expect(record.attempts).toMatchObject([{ attempt: 1, endReason: 'SUCCEEDED' }]);
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);
});
