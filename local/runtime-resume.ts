import type { Attempt, RunRecord } from '../shared/domain/run-record';
import type { AttemptState } from '../shared/usecases/train-run-state';

/**
 * Where a run found live at start re-enters the train-run machine. On AWS an execution outlives
 * any control-plane process; here the execution lived in the stopped process, so the runtime
 * starts a new one with the same name (the run id) at the state the run record says the run was
 * in, with the execution state rebuilt from the record (ids and S3 pointers only, as the real
 * state holds). Every step it re-enters is idempotent: ProvisionInstance reuses the attempt's
 * instance (client token runId-attempt), LaunchTraining's marker keeps one agent per attempt.
 */

/** The ASL states a resumed execution can start at. */
export const RESUME_ENTRY_STATES = [
  'ValidateRun',
  'EnsureImage',
  'ProvisionInstance',
  'StartReadinessChecks',
  'LaunchTraining',
  'FinalizeArtifacts',
  'ReleaseResources',
] as const;

export interface ResumeEntry {
  /** The state the new execution starts at (one of the ASL's own states). */
  startAt: (typeof RESUME_ENTRY_STATES)[number];
  input: unknown;
  /** CHECKPOINTING is written back to TRAINING first: LaunchTraining accepts only the phases before it. */
  rewriteStatus?: { from: 'CHECKPOINTING'; to: 'TRAINING' };
  /** The task token the attempt's agent holds, to be mapped to the resumed wait's new one. */
  agentToken?: { attempt: number; token: string };
}

/** The entry of a live run, or undefined for a terminal one. */
export function resumeEntry(record: RunRecord): ResumeEntry | undefined {
  const last: Attempt | undefined = record.attempts.at(-1);
  const base: AttemptState = {
    runId: record.runId,
    attempt: last?.attempt ?? 1,
    resumeFrom: last?.resumeFrom ?? null,
    placement: null,
    waitingSince: null,
    maxRuntimeSeconds: record.spec.limits.maxRuntime,
  };
  const provision =
    last?.instanceId === undefined
      ? undefined
      : {
          launched: true,
          instance: {
            instanceId: last.instanceId,
            instanceType: last.instanceType ?? 'unknown',
            availabilityZone: last.availabilityZone ?? 'unknown',
            spot: last.spot,
          },
          waitingSince: null,
        };
  const agentToken =
    record.taskToken !== undefined && record.taskTokenAttempt !== undefined
      ? { attempt: record.taskTokenAttempt, token: record.taskToken }
      : undefined;
  const nextAttempt: AttemptState = {
    ...base,
    attempt: (last?.attempt ?? 0) + 1,
    resumeFrom: record.latestCheckpoint?.uri ?? null,
  };

  switch (record.status) {
    case 'PENDING':
    case 'VALIDATING':
      return {
        startAt: 'ValidateRun',
        input: { runId: record.runId, owner: record.owner, spec: record.spec, clientToken: record.clientToken, scheduleId: record.scheduleId },
      };
    case 'BUILDING_IMAGE':
      // Its image build was under way: check the image again (and build it if still missing).
      return { startAt: 'EnsureImage', input: base };
    case 'PROVISIONING':
    case 'WAITING_FOR_CAPACITY':
    case 'STARTING':
      // An ended last attempt means DecideRecovery had moved on: this is the next attempt's launch.
      return { startAt: 'ProvisionInstance', input: last?.endedAt === undefined ? base : nextAttempt };
    case 'PREFETCHING':
      if (provision === undefined) return release(base, 'PREFETCHING without an instance on the record');
      return { startAt: 'StartReadinessChecks', input: { ...base, provision } };
    case 'TRAINING':
    case 'CHECKPOINTING':
      if (provision === undefined) return release(base, `${record.status} without an instance on the record`);
      return {
        startAt: 'LaunchTraining',
        input: { ...base, provision },
        rewriteStatus: record.status === 'CHECKPOINTING' ? { from: 'CHECKPOINTING', to: 'TRAINING' } : undefined,
        agentToken,
      };
    case 'FINALIZING':
      return { startAt: 'FinalizeArtifacts', input: { ...base, provision } };
    case 'RECOVERING':
      // DecideRecovery chose to retry; ReleaseResources ends the old attempt, then the next one starts.
      return {
        startAt: 'ReleaseResources',
        input: {
          ...base,
          provision,
          recovery: { action: 'retry', nextAttempt: nextAttempt.attempt, resumeFrom: nextAttempt.resumeFrom, placement: null },
        },
      };
    case 'CANCELLING':
      return {
        startAt: 'ReleaseResources',
        input: { ...base, provision, error: { Error: 'Run.Cancelled', Cause: JSON.stringify({ reason: 'cancelled' }) } },
      };
    case 'ATTACHING_VOLUME':
      return release(base, 'the local backend has no volumes to attach');
    default:
      return undefined;
  }
}

/** Ends the run through ReleaseResources and FinishRun (FAILED_CONTROLLER with the reason). */
function release(base: AttemptState, reason: string): ResumeEntry {
  return {
    startAt: 'ReleaseResources',
    input: { ...base, error: { Error: 'Controller.Restarted', Cause: `The control plane restarted and cannot resume: ${reason}` } },
  };
}
