import { describe, expect, it } from 'vitest';
import {
  checkpointedEpoch,
  expectResumedAfter,
  finish,
  retriedStates,
  startChaosWorld,
  submitPaced,
  throttled,
  waitForCheckpointEpoch,
  waitForTrainingAttempt,
} from './support';

/**
 * Interruptions EC2 delivers awkwardly: twice in a row, after the instance is gone, or with the
 * recovery's own AWS calls failing. Each interruption lands mid-training: the first attempt holds
 * after epoch 2, checkpointed, until its stop signal, and the 22 epochs of 0.5 s after it leave a
 * resumed attempt seconds of training for a second interruption.
 */

const EPOCHS = 24;

describe('chaos: interruptions', () => {
  it('a warning delivered after the instance is already gone is ignored; the run recovers through Instance.Lost', async () => {
    const chaos = await startChaosWorld();
    try {
      const run = await submitPaced(chaos.world, EPOCHS, 0.5, { holdAfterEpoch: 2 });
      await waitForCheckpointEpoch(chaos.world, run.runId, 2);
      const before = await checkpointedEpoch(chaos.world, run.runId);
      const instanceId = await chaos.faults.killCurrentInstance(run.runId);
      // The attempt has ended (or the run moved on) by the time the late warning arrives.
      await waitFor2ndAttempt(chaos, run.runId);
      const outcome = await chaos.world.backend.router.emitSpotInterruptionWarning(instanceId);
      expect(JSON.stringify(outcome)).toContain('ignored');
      const { record } = await finish(chaos.world, run.runId);
      expect(record.attempts[0]).toMatchObject({ instanceId, endReason: 'INSTANCE_LOST' });
      expect(record.interruptions).toBe(1);
      await expectResumedAfter(chaos.world, record, before, EPOCHS);
    } finally {
      await chaos.close();
    }
  }, 240_000);


  it('two interruptions in a row: two recoveries, both counted, resumed from the newest checkpoint', async () => {
    const chaos = await startChaosWorld();
    try {
      const run = await submitPaced(chaos.world, EPOCHS, 0.5, { holdAfterEpoch: 2 });
      await waitForCheckpointEpoch(chaos.world, run.runId, 2);
      await chaos.world.backend.interrupt(run.runId);
      // The second one as soon as the resumed attempt trains, before it has checkpointed anew.
      await waitForTrainingAttempt(chaos.world, run.runId, 2);
      const before = await checkpointedEpoch(chaos.world, run.runId);
      await chaos.world.backend.interrupt(run.runId);
      const { record } = await finish(chaos.world, run.runId);
      expect(record.attempts.map((a) => a.endReason)).toEqual(['SPOT_INTERRUPTED', 'SPOT_INTERRUPTED', 'SUCCEEDED']);
      expect(record.interruptions).toBe(2);
      await expectResumedAfter(chaos.world, record, before, EPOCHS);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('the checkpoint lookup throttled once after an interruption: DecideRecovery retried, resumed on a second attempt', async () => {
    const chaos = await startChaosWorld();
    try {
      const run = await submitPaced(chaos.world, EPOCHS, 0.5, { holdAfterEpoch: 2 });
      await waitForCheckpointEpoch(chaos.world, run.runId, 2);
      const before = await checkpointedEpoch(chaos.world, run.runId);
      // The next lookup after the warning is DecideRecovery's (nothing on the warning path reads S3).
      chaos.faults.next('latestCheckpoint', () => {
        throw throttled('ListObjectsV2');
      });
      await chaos.world.backend.interrupt(run.runId);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(retriedStates(chaos.world, run.runId)).toEqual(['DecideRecovery']);
      expect(record.attempts.map((a) => a.endReason)).toEqual(['SPOT_INTERRUPTED', 'SUCCEEDED']);
      expect(record.interruptions).toBe(1);
      await expectResumedAfter(chaos.world, record, before, EPOCHS);
    } finally {
      await chaos.close();
    }
  }, 240_000);
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
