import { describe, expect, it } from 'vitest';
import { denied, finish, retriedStates, startChaosWorld, submitPaced, throttled } from './support';

/**
 * The next AWS call of a phase fails, the way the adapters report it: `Aws.Throttled`
 * (transient: the state's Retry takes it) or `Aws.CallFailed` (fatal: the run ends with the
 * reason, after releasing what it holds).
 */

const EPOCHS = 4;

describe('chaos: the next AWS call fails', () => {
  it('RunInstances denied while provisioning: a terminal failure naming the error, no instance', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next('launch', () => {
        throw denied('RunInstances');
      });
      const run = await submitPaced(chaos.world, EPOCHS, 0.1);
      const { record } = await finish(chaos.world, run.runId);
      expect(record.status).not.toBe('SUCCEEDED');
      expect(record.statusReason).toContain('UnauthorizedOperation');
      expect(await chaos.world.backend.compute.listTaggedInstances()).toEqual([]);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('RunInstances throttled once: ProvisionInstance retried in place, SUCCEEDED on the first attempt', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next('launch', () => {
        throw throttled('RunInstances');
      });
      const run = await submitPaced(chaos.world, EPOCHS, 0.1);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.status).toBe('SUCCEEDED');
      expect(retriedStates(chaos.world, run.runId)).toEqual(['ProvisionInstance']);
      expect(record.attempts).toMatchObject([{ attempt: 1, endReason: 'SUCCEEDED' }]);
      // One instance: the retry launched with the same client token, nothing was leaked.
      expect(chaos.faults.calls.filter((c) => c.startsWith('launched '))).toHaveLength(1);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('the readiness check throttled once: CheckInstance retried, not a new attempt', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next('readiness', () => {
        throw throttled('DescribeInstanceStatus');
      });
      const run = await submitPaced(chaos.world, EPOCHS, 0.1);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.status).toBe('SUCCEEDED');
      expect(retriedStates(chaos.world, run.runId)).toEqual(['CheckInstance']);
      expect(record.attempts).toMatchObject([{ attempt: 1, endReason: 'SUCCEEDED' }]);
      expect(record.interruptions).toBe(0);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('SendCommand denied for the prefetch: a terminal failure naming the error, the instance released', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next(
        'sendCommand',
        () => {
          throw denied('SendCommand');
        },
        (comment) => comment.startsWith('runctl prefetch'),
      );
      const run = await submitPaced(chaos.world, EPOCHS, 0.1);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.status).not.toBe('SUCCEEDED');
      expect(record.statusReason).toContain('UnauthorizedOperation');
      const instanceId = record.attempts[0]?.instanceId ?? '';
      expect((await chaos.world.backend.compute.describe(instanceId))?.state).toBe('terminated');
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('SendCommand throttled when starting training: LaunchTraining retried with a fresh token, SUCCEEDED', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next(
        'sendCommand',
        () => {
          throw throttled('SendCommand');
        },
        (comment) => comment.startsWith('runctl train'),
      );
      const run = await submitPaced(chaos.world, EPOCHS, 0.1);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.status).toBe('SUCCEEDED');
      expect(record.attempts).toMatchObject([{ attempt: 1, endReason: 'SUCCEEDED' }]);
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('TerminateInstances throttled during release: retried, the instance terminated, SUCCEEDED', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next('terminate', () => {
        throw throttled('TerminateInstances');
      });
      const run = await submitPaced(chaos.world, EPOCHS, 0.1);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      expect(record.status).toBe('SUCCEEDED');
      const instanceId = record.attempts[0]?.instanceId ?? '';
      expect((await chaos.world.backend.compute.describe(instanceId))?.state).toBe('terminated');
    } finally {
      await chaos.close();
    }
  }, 240_000);

  it('TerminateInstances denied once during release: the state retries it, nothing left running', async () => {
    const chaos = await startChaosWorld();
    try {
      chaos.faults.next('terminate', () => {
        throw denied('TerminateInstances');
      });
      const run = await submitPaced(chaos.world, EPOCHS, 0.1);
      const { record } = await finish(chaos.world, run.runId);
      expect(chaos.faults.allFired()).toBe(true);
      const instanceId = record.attempts[0]?.instanceId ?? '';
      expect((await chaos.world.backend.compute.describe(instanceId))?.state).toBe('terminated');
    } finally {
      await chaos.close();
    }
  }, 240_000);
});
