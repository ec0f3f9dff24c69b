import { checkpointNowCommand } from '../agent/commands';
import type { SpotInterruptionWarning } from '../events/ec2-events';
import { logger } from '../logger';
import type { AttemptSignals } from '../ports/attempt-signals';
import type { Compute } from '../ports/compute';
import type { InstanceTags } from '../ports/instance-tags';
import type { RunStore } from '../ports/run-store';
import { attemptOf, ignored, staleAttemptReason, type InstanceEventOutcome } from './instance-event';

export interface SpotWarningDeps {
  instances: InstanceTags;
  signals: AttemptSignals;
  /** Read only when the instance lacks the owner tag, or to explain an ignored event. */
  store: Pick<RunStore, 'get'>;
  compute: Pick<Compute, 'sendCommand'>;
}

/** SSM gives up delivering after this long: the instance is reclaimed 120 s after the warning. */
const DELIVERY_TIMEOUT_SECONDS = 60;

/**
 * On an EC2 spot interruption warning: find the run from the instance's tags, move it TRAINING →
 * CHECKPOINTING and record the interruption on the attempt (one conditional write), then tell the
 * agent to checkpoint now. Three AWS calls when the instance carries its owner tag; the agent
 * then calls back Spot.Interrupted and the execution resumes elsewhere. A duplicate or late
 * warning, or one for an instance runctl does not own, fails the write's condition or the tag
 * lookup and is ignored with its reason.
 */
export async function onSpotWarning(event: SpotInterruptionWarning, deps: SpotWarningDeps): Promise<InstanceEventOutcome> {
  const instanceId = event.detail['instance-id'];
  const run = await deps.instances.runOf(instanceId);
  if (run === undefined) return report(ignored(instanceId, 'the instance carries no run tag of this stack'));

  let owner = run.owner;
  if (owner === undefined) {
    // An instance launched without the owner tag: one read more, and a chance to skip the write.
    const record = await deps.store.get(run.runId);
    const stale = staleAttemptReason(record, run, instanceId);
    if (stale !== undefined || record === undefined) return report(ignored(instanceId, stale ?? 'no record', run));
    owner = record.owner;
  }

  const marked = await deps.signals.markSpotInterrupted({
    ...run,
    owner,
    instanceId,
    noticedAt: event.time,
    action: event.detail['instance-action'],
  });
  if (!marked) return report(ignored(instanceId, await whyNotMarked(deps, run, instanceId), run));

  let commandId: string | null = null;
  try {
    commandId = await deps.compute.sendCommand(instanceId, checkpointNowCommand(run.runId, run.attempt, 'spot-warning'), {
      timeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
      comment: `runctl checkpoint ${run.runId} attempt ${run.attempt}: spot interruption`,
    });
  } catch (error) {
    // Not rethrown: a retried invocation would find the run CHECKPOINTING and send nothing. The
    // agent's own IMDS poll sees the same notice, and if the instance dies first the
    // instance-state handler fails the wait with Instance.Lost.
    logger.error('checkpoint command not delivered; relying on the agent metadata poll', { instanceId, ...run, error });
  }
  return report({ action: 'checkpoint-requested', instanceId, runId: run.runId, attempt: run.attempt, commandId });
}

/** Reads the run to say why the conditional write did not apply (only on the ignored path). */
async function whyNotMarked(deps: SpotWarningDeps, run: { runId: string; attempt: number }, instanceId: string): Promise<string> {
  const record = await deps.store.get(run.runId);
  const stale = staleAttemptReason(record, run, instanceId);
  if (stale !== undefined || record === undefined) return stale ?? 'no record';
  const attempt = attemptOf(record, run.attempt);
  if (record.status === 'CHECKPOINTING' && attempt?.endReason === 'SPOT_INTERRUPTED') {
    return `duplicate warning: attempt ${run.attempt} is already checkpointing for a spot interruption`;
  }
  if (attempt?.endReason !== undefined) return `attempt ${run.attempt} is already ending (${attempt.endReason})`;
  if (record.status !== 'TRAINING') return `run is ${record.status}, not TRAINING: no agent to checkpoint`;
  return 'the instance owner tag does not match the run';
}

function report(outcome: InstanceEventOutcome): InstanceEventOutcome {
  logger.info(`spot warning: ${outcome.action}`, { outcome });
  return outcome;
}
