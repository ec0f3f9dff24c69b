import { describe, expect, it } from 'vitest';
import { waitFor } from '../e2e/support';
import { expectResumedAfter, finish, startChaosWorld, submitPaced, waitForCheckpointEpoch, waitForStatus } from './support';

/**
 * Spot warnings EC2 delivers more than once, or too late to matter: each interruption is counted
 * once, and only when it ended an attempt.
 */

const EPOCHS = 24;
const CHECKPOINT_COMMAND = 'spot interruption';

describe('chaos: warnings delivered twice or too late', () => {
  it('a duplicate warning is ignored: one checkpoint command, one interruption counted', async () => {
    const chaos = await startChaosWorld();
    try {
      const run = await submitPaced(chaos.world, EPOCHS, 0.5, { holdAfterEpoch: 2 });
      const before = await waitForCheckpointEpoch(chaos.world, run.runId, 2);
      const { instanceId } = await chaos.world.backend.interrupt(run.runId);
      const duplicate = await chaos.world.backend.router.emitSpotInterruptionWarning(instanceId);
      expect(duplicate).toMatchObject([{ target: 'spot-warning', ok: true, result: { action: 'ignored' } }]);
      expect(JSON.stringify(duplicate)).toContain('duplicate warning');
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.calls.filter((c) => c.startsWith('sendCommand') && c.includes(CHECKPOINT_COMMAND))).toHaveLength(1);
      expect(record.attempts.map((a) => a.endReason)).toEqual(['SPOT_INTERRUPTED', 'SUCCEEDED']);
      expect(record.interruptions).toBe(1);
      await expectResumedAfter(chaos.world, record, before, EPOCHS);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('a warning that reaches the agent only after the script finished: SUCCEEDED on that attempt, no interruption counted', async () => {
    const chaos = await startChaosWorld();
    try {
      const run = await submitPaced(chaos.world, 10, 0.3);
      // The warning's write lands while the run trains; its "checkpoint now" is held until the
      // agent has reported the script's exit 0, as when the warning comes in its last seconds.
      chaos.faults.next(
        'sendCommand',
        async () => {
          await waitFor(`${run.runId} to finish training`, async () => {
            const record = await chaos.world.backend.store.get(run.runId);
            return record !== undefined && ['FINALIZING', 'SUCCEEDED'].includes(record.status) ? true : undefined;
          });
        },
        (comment) => comment.includes(CHECKPOINT_COMMAND),
      );
      const training = await waitForStatus(chaos.world, run.runId, 'TRAINING');
      const instanceId = training.attempts.at(-1)?.instanceId ?? '';
      const warned = chaos.world.backend.router.emitSpotInterruptionWarning(instanceId);
      const { record } = await finish(chaos.world, run.runId);
      // The warning was taken (the attempt marked, the command sent), not ignored.
      expect(await warned).toMatchObject([{ target: 'spot-warning', ok: true, result: { action: 'checkpoint-requested' } }]);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.status).toBe('SUCCEEDED');
      expect(record.attempts).toMatchObject([{ attempt: 1, endReason: 'SUCCEEDED' }]);
      expect(record.interruptions).toBe(0);
    } finally {
      await chaos.close();
    }
  }, 240_000);
});
