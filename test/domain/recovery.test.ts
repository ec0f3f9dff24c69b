import { describe, expect, it } from 'vitest';
import { decideRecovery, endReasonFor, isInterruption, type RecoveryObservation, type RecoveryPolicy } from '../../shared/domain/recovery';

const policy: RecoveryPolicy = {
  maxInterruptions: 2,
  maxRestartsOnError: 1,
  strategy: 'failover',
  instanceTypes: ['g5.xlarge', 'g6.xlarge'],
  availabilityZones: ['us-east-1a', 'us-east-1b'],
  spot: true,
  onDemandFallback: false,
};

const observed = (o: Partial<RecoveryObservation>): RecoveryObservation => ({
  error: 'Spot.Interrupted',
  attempt: 1,
  interruptions: 1,
  userFailures: 0,
  instanceType: 'g5.xlarge',
  availabilityZone: 'us-east-1a',
  spot: true,
  latestCheckpoint: 's3://b/runs/r/checkpoints/ckpt-1/',
  ...o,
});

describe('decideRecovery', () => {
  it.each([
    ['Spot.Interrupted within budget', observed({}), 'retry', undefined],
    ['Instance.Lost within budget', observed({ error: 'Instance.Lost', interruptions: 2 }), 'retry', undefined],
    ['heartbeat timeout past budget', observed({ error: 'States.HeartbeatTimeout', interruptions: 3 }), 'stop', 'FAILED_NO_CAPACITY'],
    ['not ready past budget', observed({ error: 'Instance.NotReady', interruptions: 3 }), 'stop', 'FAILED_NO_CAPACITY'],
    ['first training failure with one restart allowed', observed({ error: 'Training.Failed', interruptions: 0, userFailures: 1 }), 'retry', undefined],
    ['second training failure', observed({ error: 'Training.Failed', interruptions: 0, userFailures: 2 }), 'stop', 'FAILED_USER'],
    ['cancel', observed({ error: 'Run.Cancelled' }), 'stop', 'CANCELLED'],
    ['max runtime', observed({ error: 'States.Timeout' }), 'stop', 'STOPPED_BUDGET'],
    ['unknown error', observed({ error: 'Lambda.Unknown' }), 'stop', 'FAILED_CONTROLLER'],
  ] as const)('%s → %s', (_name, observation, action, status) => {
    const decision = decideRecovery(observation, policy);
    expect(decision.action).toBe(action);
    if (decision.action === 'stop') expect(decision.status).toBe(status);
  });

  it('user failures do not use the interruption budget, and interruptions not the restart budget', () => {
    const crash = decideRecovery(observed({ error: 'Training.Failed', interruptions: 5, userFailures: 1 }), policy);
    expect(crash.action).toBe('retry');
    const preempted = decideRecovery(observed({ interruptions: 1, userFailures: 9 }), policy);
    expect(preempted.action).toBe('retry');
  });

  it('resumes the next attempt from the newest checkpoint, or from scratch when there is none', () => {
    const withCheckpoint = decideRecovery(observed({ attempt: 3 }), policy);
    expect(withCheckpoint).toMatchObject({ action: 'retry', nextAttempt: 4, resumeFrom: 's3://b/runs/r/checkpoints/ckpt-1/' });
    const fresh = decideRecovery(observed({ latestCheckpoint: undefined }), policy);
    expect(fresh).toMatchObject({ action: 'retry', resumeFrom: null });
  });

  it('failover keeps the preference order; eager-next moves the interrupted type and AZ to the back', () => {
    const failover = decideRecovery(observed({}), policy);
    expect(failover.action === 'retry' && failover.placement).toEqual({
      instanceTypes: ['g5.xlarge', 'g6.xlarge'],
      availabilityZones: ['us-east-1a', 'us-east-1b'],
      spot: true,
    });
    const eager = decideRecovery(observed({}), { ...policy, strategy: 'eager-next' });
    expect(eager.action === 'retry' && eager.placement).toEqual({
      instanceTypes: ['g6.xlarge', 'g5.xlarge'],
      availabilityZones: ['us-east-1b', 'us-east-1a'],
      spot: true,
    });
  });

  it('falls back to on-demand once spot interruptions are used up, when the spec allows it', () => {
    const decision = decideRecovery(observed({ interruptions: 3 }), { ...policy, onDemandFallback: true });
    expect(decision.action === 'retry' && decision.placement.spot).toBe(false);
    const again = decideRecovery(observed({ interruptions: 4, spot: false }), { ...policy, onDemandFallback: true });
    expect(again).toMatchObject({ action: 'stop', status: 'FAILED_NO_CAPACITY' });
  });

  it('stays on on-demand after the fallback when the script then fails: the attempts stay bounded', () => {
    const fallback = { ...policy, onDemandFallback: true, maxRestartsOnError: 1 };
    const decision = decideRecovery(observed({ error: 'Training.Failed', interruptions: 3, userFailures: 1, spot: false }), fallback);
    expect(decision).toMatchObject({ action: 'retry', placement: { spot: false } });
  });
});

describe('attempt end reasons', () => {
  it.each([
    [undefined, 'SUCCEEDED', false],
    ['Spot.Interrupted', 'SPOT_INTERRUPTED', true],
    ['Instance.Lost', 'INSTANCE_LOST', true],
    ['States.HeartbeatTimeout', 'HEARTBEAT_TIMEOUT', true],
    ['Instance.NotReady', 'NOT_READY', true],
    ['Training.Failed', 'TRAINING_FAILED', false],
    ['Run.Cancelled', 'CANCELLED', false],
    ['Aws.CallFailed', 'CONTROLLER_ERROR', false],
  ] as const)('%s → %s', (error, reason, interruption) => {
    expect(endReasonFor(error)).toBe(reason);
    expect(isInterruption(endReasonFor(error))).toBe(interruption);
  });
});
