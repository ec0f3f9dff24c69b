import type { AttemptEndReason } from './run-record';
import type { TerminalStatus } from './run-status';

/**
 * Recovery policy: what to do when an attempt ends without the script exiting 0. Pure, so it
 * can be table-tested. Preemption (the provider took the instance) and user failure (the
 * script exited non-zero on a healthy instance) take different paths and different budgets,
 * as in SkyPilot's managed jobs: an interruption is nobody's fault and is retried elsewhere;
 * a crash of the script is retried only as often as the spec allows.
 */

/** How the next attempt's instance types are ordered after an interruption. */
export type RecoveryStrategy =
  /** Keep the spec's preference order: the interrupted type is tried first again. */
  | 'failover'
  /** Move the interrupted type (and AZ) to the back: capacity there was just reclaimed. */
  | 'eager-next';

export interface RecoveryPolicy {
  maxInterruptions: number;
  maxRestartsOnError: number;
  strategy: RecoveryStrategy;
  /** The spec's instance types and AZs, in preference order. */
  instanceTypes: readonly string[];
  availabilityZones: readonly string[];
  spot: boolean;
  /** Move to on-demand once spot interruptions have used up their budget. */
  onDemandFallback: boolean;
}

export interface RecoveryObservation {
  /** The ASL error name the attempt ended with, e.g. `Spot.Interrupted`. */
  error: string;
  /** Human-readable cause, used in the stop reason. */
  cause?: string;
  /** The attempt that just ended. */
  attempt: number;
  /** Interruptions and user failures counted so far, the one just observed included. */
  interruptions: number;
  userFailures: number;
  /** Instance type and AZ of the attempt that just ended, when it got that far. */
  instanceType?: string;
  availabilityZone?: string;
  /** Whether the attempt that ended ran on spot. */
  spot: boolean;
  /** Newest complete checkpoint in S3, if any. */
  latestCheckpoint?: string;
}

export interface Placement {
  instanceTypes: string[];
  availabilityZones: string[];
  spot: boolean;
}

export type RecoveryDecision =
  | ({ action: 'retry'; nextAttempt: number; resumeFrom: string | null; reason: string } & { placement: Placement })
  | { action: 'stop'; status: TerminalStatus; reason: string };

/** The error names that mean the provider took or lost the instance. */
export const INTERRUPTION_ERRORS = ['Spot.Interrupted', 'Instance.Lost', 'States.HeartbeatTimeout', 'Instance.NotReady'] as const;

/** Errors the state machine sends to DecideRecovery instead of failing the run outright. */
export const RECOVERABLE_ERRORS = [...INTERRUPTION_ERRORS, 'Training.Failed', 'Run.Cancelled', 'States.Timeout'] as const;

/** How an attempt that ended with `error` is recorded on the run. */
export function endReasonFor(error: string | undefined): AttemptEndReason {
  switch (error) {
    case undefined:
      return 'SUCCEEDED';
    case 'Spot.Interrupted':
      return 'SPOT_INTERRUPTED';
    case 'Instance.Lost':
      return 'INSTANCE_LOST';
    case 'States.HeartbeatTimeout':
      return 'HEARTBEAT_TIMEOUT';
    case 'Instance.NotReady':
      return 'NOT_READY';
    case 'Training.Failed':
      return 'TRAINING_FAILED';
    case 'Run.Cancelled':
      return 'CANCELLED';
    case 'States.Timeout':
      return 'BUDGET';
    default:
      return 'CONTROLLER_ERROR';
  }
}

/** True for the end reasons that count against `recovery.maxInterruptions`. */
export function isInterruption(reason: AttemptEndReason | undefined): boolean {
  return reason === 'SPOT_INTERRUPTED' || reason === 'LOST_DURING_CHECKPOINT' || reason === 'INSTANCE_LOST' || reason === 'HEARTBEAT_TIMEOUT' || reason === 'NOT_READY';
}

/**
 * The run record's counters, from the attempts' end reasons: each attempt ends once with one
 * reason, so an interruption is counted exactly once whichever path recorded it (the warning's
 * write, DecideRecovery, ReleaseResources) and however often a step is retried.
 */
export function countEndReasons(reasons: ReadonlyArray<AttemptEndReason | undefined>): { interruptions: number; userFailures: number } {
  return {
    interruptions: reasons.filter(isInterruption).length,
    userFailures: reasons.filter((r) => r === 'TRAINING_FAILED').length,
  };
}

/** Moves `value` to the back of `list` (no-op when absent). */
function demote(list: readonly string[], value: string | undefined): string[] {
  if (value === undefined || !list.includes(value)) return [...list];
  return [...list.filter((v) => v !== value), value];
}

function placementAfter(observation: RecoveryObservation, policy: RecoveryPolicy, interruptionsExhausted: boolean): Placement {
  const eager = policy.strategy === 'eager-next';
  return {
    instanceTypes: eager ? demote(policy.instanceTypes, observation.instanceType) : [...policy.instanceTypes],
    availabilityZones: eager ? demote(policy.availabilityZones, observation.availabilityZone) : [...policy.availabilityZones],
    // Once spot has used up its interruption budget, the on-demand fallback gets the run home.
    spot: policy.spot && !interruptionsExhausted,
  };
}

/** Decides whether the run gets another attempt, and where it resumes, or how it ends. */
export function decideRecovery(observation: RecoveryObservation, policy: RecoveryPolicy): RecoveryDecision {
  const { error } = observation;
  const detail = observation.cause ? `: ${observation.cause}` : '';
  if (error === 'Run.Cancelled') {
    return { action: 'stop', status: 'CANCELLED', reason: `Cancelled by the owner during attempt ${observation.attempt}` };
  }
  if (error === 'States.Timeout') {
    return { action: 'stop', status: 'STOPPED_BUDGET', reason: 'The run passed limits.maxRuntime' };
  }
  // Once interruptions have used up their budget the run stays on on-demand, even after a
  // script failure: so a run makes at most maxInterruptions + maxRestartsOnError + 2 attempts
  // (shared/domain/history-budget.ts counts on it).
  const retry = (reason: string, exhausted = observation.interruptions > policy.maxInterruptions): RecoveryDecision => ({
    action: 'retry',
    nextAttempt: observation.attempt + 1,
    resumeFrom: observation.latestCheckpoint ?? null,
    reason,
    placement: placementAfter(observation, policy, exhausted),
  });
  if (error === 'Training.Failed') {
    if (observation.userFailures > policy.maxRestartsOnError) {
      return {
        action: 'stop',
        status: 'FAILED_USER',
        reason: `The training script failed ${observation.userFailures} time(s); recovery.maxRestartsOnError is ${policy.maxRestartsOnError}${detail}`,
      };
    }
    return retry(`Restarting after training failure ${observation.userFailures} of ${policy.maxRestartsOnError + 1} allowed${detail}`);
  }
  if ((INTERRUPTION_ERRORS as readonly string[]).includes(error)) {
    if (observation.interruptions > policy.maxInterruptions) {
      if (policy.spot && policy.onDemandFallback && observation.spot) {
        return retry(`${error} #${observation.interruptions} used up recovery.maxInterruptions; falling back to on-demand`, true);
      }
      return {
        action: 'stop',
        status: 'FAILED_NO_CAPACITY',
        reason: `${observation.interruptions} interruptions exceed recovery.maxInterruptions (${policy.maxInterruptions}); last: ${error}${detail}`,
      };
    }
    return retry(`Resuming after ${error} (interruption ${observation.interruptions} of ${policy.maxInterruptions})`);
  }
  return { action: 'stop', status: 'FAILED_CONTROLLER', reason: `Unrecoverable error ${error}${detail}` };
}
