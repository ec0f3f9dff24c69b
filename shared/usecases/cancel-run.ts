import { z } from 'zod';
import { ConflictError, RunInvalidError, StatusConflictError } from '../errors';
import { stopCommand } from '../agent/commands';
import { attemptInstanceIds, type RunRecord } from '../domain/run-record';
import { isTerminal } from '../domain/run-status';
import { toFieldIssues } from '../domain/run-spec';
import type { Compute } from '../ports/compute';
import type { Executions } from '../ports/executions';
import type { RunStore } from '../ports/run-store';
import { getOwnedRun } from './query-runs';

export const CancelRunBodySchema = z
  .object({
    /** Skip the checkpoint: release at once (work since the last periodic checkpoint is lost). */
    force: z.boolean().default(false),
  })
  .default({ force: false });

export interface CancelRunDeps {
  store: RunStore;
  executions: Executions;
  compute: Compute;
  clock: () => Date;
}

/** A status write can lose to the execution moving the run on; re-read and try again this often. */
const MAX_STATUS_RACES = 3;

/**
 * Cancels a run of the caller's. The run becomes CANCELLING at once; the state machine then
 * finishes the job so that every resource goes through ReleaseResources:
 * - while training, the agent is asked to checkpoint and stop (it calls back `Run.Cancelled`),
 *   or with `force` the waiting task is failed with `Run.Cancelled` straight away;
 * - in any other phase the next step sees CANCELLING and raises `Run.Cancelled` itself.
 */
export async function cancelRun(
  request: { owner: string; runId: string; body: unknown },
  deps: CancelRunDeps,
): Promise<RunRecord> {
  const body = CancelRunBodySchema.safeParse(request.body ?? undefined);
  if (!body.success) {
    const issues = toFieldIssues(body.error);
    throw new RunInvalidError(`Invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  const { force } = body.data;
  const record = await getOwnedRun(request, deps);
  return stopRun(record, {
    force,
    reason: force ? 'Cancel requested (force): releasing without a checkpoint' : 'Cancel requested: checkpointing, then releasing',
  }, deps);
}

/**
 * Moves a live run to CANCELLING and reaches its agent: the one way a run is stopped from
 * outside, whoever asks (its owner, a stopped sweep, a sweep's early-stopping rule).
 */
export async function stopRun(
  found: RunRecord,
  request: { force: boolean; reason: string; earlyStop?: boolean },
  deps: CancelRunDeps,
): Promise<RunRecord> {
  const { force } = request;
  let record = found;
  for (let race = 0; ; race += 1) {
    if (isTerminal(record.status)) {
      throw new ConflictError(`Run ${record.runId} already ended with status ${record.status}; nothing to cancel`);
    }
    if (record.status === 'CANCELLING' && record.cancelRequested !== undefined && (record.cancelRequested.force || !force)) {
      return record; // already asked for, at least as strongly
    }
    try {
      record = await deps.store.transition(record.runId, record.status, 'CANCELLING', {
        statusReason: request.reason,
        cancelRequested: { at: deps.clock().toISOString(), force, ...(request.earlyStop === true ? { earlyStop: true } : {}) },
      });
      break;
    } catch (error) {
      if (!(error instanceof StatusConflictError) || race + 1 >= MAX_STATUS_RACES) throw error;
      const reread = await deps.store.get(record.runId);
      if (reread === undefined) throw error;
      record = reread;
    }
  }

  await signalLiveAttempt(record, force, deps);
  return record;
}

/** Reaches the agent of a live attempt, if there is one waiting on a task token (and ends a wait for a replacement). */
async function signalLiveAttempt(record: RunRecord, force: boolean, deps: CancelRunDeps): Promise<void> {
  // Waiting for the replacement launched on the warning: go on at once, to meet the cancel in AdoptReplacement.
  if (record.replacementToken !== undefined) {
    await deps.executions.failTask(record.replacementToken, 'Run.Cancelled', JSON.stringify({ reason: 'cancelled', force }));
  }
  const token = record.taskToken;
  const attempt = record.attempts.find((a) => a.attempt === record.taskTokenAttempt);
  if (token === undefined || attempt === undefined) return;
  const cause = JSON.stringify({ reason: 'cancelled', force });
  if (force || attempt.instanceId === undefined) {
    await deps.executions.failTask(token, 'Run.Cancelled', cause);
    return;
  }
  try {
    // Every node of a multi-node attempt saves and stops.
    await Promise.all(
      attemptInstanceIds(attempt).map((instanceId) =>
        deps.compute.sendCommand(instanceId, stopCommand(record.runId, attempt.attempt), {
          timeoutSeconds: 60,
          comment: `runctl cancel ${record.runId}`,
        }),
      ),
    );
  } catch {
    // The instance cannot be reached (gone, SSM offline): nothing can checkpoint, so end the
    // wait now rather than at the heartbeat timeout.
    await deps.executions.failTask(token, 'Run.Cancelled', JSON.stringify({ reason: 'cancelled', force, agentUnreachable: true }));
  }
}
