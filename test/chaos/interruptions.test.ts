import { describe, expect, it } from 'vitest';
import { checkpointedEpoch, expectResumedAfter, finish, startChaosWorld, submitPaced, waitForCheckpointEpoch } from './support';

/** Interruptions EC2 delivers awkwardly: twice in a row, after the instance is gone, or twice for one instance. */

describe('chaos: interruptions', () => {
  it('a warning delivered after the instance is already gone is ignored; the run recovers through Instance.Lost', async () => {
    const chaos = await startChaosWorld();
    try {
      const run = await submitPaced(chaos.world, 12, 0.5);
      await waitForCheckpointEpoch(chaos.world, run.runId, 1);
      const before = await checkpointedEpoch(chaos.world, run.runId);
      const instanceId = await chaos.faults.killCurrentInstance(run.runId);
      // The attempt has ended (or the run moved on) by the time the late warning arrives.
      await waitFor2ndAttempt(chaos, run.runId);
      const outcome = await chaos.world.backend.router.emitSpotInterruptionWarning(instanceId);
      expect(JSON.stringify(outcome)).toContain('ignored');
      const { record } = await finish(chaos.world, run.runId);
      expect(record.attempts[0]).toMatchObject({ instanceId, endReason: 'INSTANCE_LOST' });
      expect(record.interruptions).toBe(1);
      await expectResumedAfter(chaos.world, record, before, 12);
    } finally {
      await chaos.close();
    }
  }, 120_000);

});

type Chaos = Awaited<ReturnType<typeof startChaosWorld>>;

async function waitFor2ndAttempt(chaos: Chaos, runId: string): Promise<void> {
  for (let i = 0; i < 240; i += 1) {
    const record = await chaos.world.backend.store.get(runId);
    if ((record?.attempts.length ?? 0) >= 2) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`run ${runId} never started a second attempt`);
}
