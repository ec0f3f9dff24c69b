import { describe, expect, it } from 'vitest';
import { checkpointedEpoch, expectResumedAfter, finish, startChaosWorld, submitPaced, waitForCheckpointEpoch } from './support';

/**
 * The instance dies (SIGKILL of every process it has, then EC2's state-change events) at each
 * phase of an attempt. Each scenario runs on its own local backend and temporary root, so they
 * run side by side.
 */

const EPOCHS = 8;

describe('chaos: the instance is killed', () => {
  it('while provisioning (right after RunInstances): a new attempt trains from the start', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next('launched', async (instanceId) => {
        await chaos.world.backend.compute.kill(instanceId);
      });
      const run = await submitPaced(chaos.world, EPOCHS, 0.2);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.status).toBe('SUCCEEDED');
      expect(record.attempts[0]?.endReason).not.toBe('SUCCEEDED');
      await expectResumedAfter(chaos.world, record, 0, EPOCHS);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('while waiting for the instance to boot: a new attempt trains from the start', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next('readiness', async (instanceId) => {
        await chaos.world.backend.compute.kill(instanceId);
      });
      const run = await submitPaced(chaos.world, EPOCHS, 0.2);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.status).toBe('SUCCEEDED');
      await expectResumedAfter(chaos.world, record, 0, EPOCHS);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('during the prefetch: the failed copy is seen as Instance.Lost and a new attempt trains from the start', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next(
        'commandSent',
        async () => {
          await chaos.faults.killCurrentInstance(run.runId);
        },
        (comment) => comment.startsWith('runctl prefetch'),
      );
      const run = await submitPaced(chaos.world, EPOCHS, 0.2);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.status).toBe('SUCCEEDED');
      expect(record.attempts.map((a) => a.endReason)).toEqual(['INSTANCE_LOST', 'SUCCEEDED']);
      expect(record.interruptions).toBe(1);
      await expectResumedAfter(chaos.world, record, 0, EPOCHS);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('during training, with no warning: Instance.Lost, resumed from the newest checkpoint', async () => {
    const chaos = await startChaosWorld();
    try {
      const run = await submitPaced(chaos.world, 14, 0.6, { holdAfterEpoch: 2 });
      await waitForCheckpointEpoch(chaos.world, run.runId, 2);
      const before = await checkpointedEpoch(chaos.world, run.runId);
      await chaos.faults.killCurrentInstance(run.runId);
      const { record } = await finish(chaos.world, run.runId);
      expect(record.attempts[0]?.endReason).toBe('INSTANCE_LOST');
      expect(record.interruptions).toBe(1);
      await expectResumedAfter(chaos.world, record, before, 14);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('while the agent uploads its checkpoint after the warning: resumed from a complete checkpoint', async () => {
    const chaos = await startChaosWorld();
    try {
      const run = await submitPaced(chaos.world, 14, 0.6, { holdAfterEpoch: 2 });
      await waitForCheckpointEpoch(chaos.world, run.runId, 2);
      const before = await checkpointedEpoch(chaos.world, run.runId);
      // The reclaim comes 400 ms after the warning: the agent is stopping the script and uploading.
      chaos.faults.next(
        'commandSent',
        async () => {
          await new Promise((resolve) => setTimeout(resolve, 400));
          await chaos.faults.killCurrentInstance(run.runId);
        },
        (comment) => comment.includes('spot interruption'),
      );
      await chaos.world.backend.interrupt(run.runId, { graceMs: 60_000 });
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.attempts[0]?.endReason).toBe('LOST_DURING_CHECKPOINT');
      await expectResumedAfter(chaos.world, record, before, 14);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('during release, as ReleaseResources terminates it: SUCCEEDED once, outputs kept', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next('terminate', async (instanceId) => {
        await chaos.world.backend.compute.kill(instanceId);
      });
      const run = await submitPaced(chaos.world, 3, 0.2);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.status).toBe('SUCCEEDED');
      expect(record.attempts).toMatchObject([{ attempt: 1, endReason: 'SUCCEEDED' }]);
      expect(await chaos.world.backend.artifacts.outputsManifest(run.runId)).toBeDefined();
    } finally {
      await chaos.close();
    }
  }, 240_000);
});
