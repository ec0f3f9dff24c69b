import { z } from 'zod';
import { countEndReasons, decideRecovery as decide, endReasonFor, type RecoveryDecision } from '../domain/recovery';
import { LIVE_STATUSES } from '../domain/run-status';
import type { RecordStepDeps } from './step-deps';
import { describeCause, requireRun } from './step-event';
import { CaughtErrorSchema, RunIdSchema } from './train-run-state';

export const DecideRecoveryEventSchema = z.object({
  runId: RunIdSchema,
  attempt: z.number().int().min(1),
  error: CaughtErrorSchema,
});
export type DecideRecoveryEvent = z.infer<typeof DecideRecoveryEventSchema>;

/**
 * DecideRecovery: ends the attempt on the record with its reason, counts interruptions and user
 * failures from the attempts (so a retried call cannot count one twice), and asks the pure
 * policy whether and where the run resumes — from the newest complete checkpoint in S3.
 */
export async function decideRecovery(event: DecideRecoveryEvent, deps: RecordStepDeps): Promise<RecoveryDecision> {
  const { runId, attempt } = event;
  const record = await requireRun(deps.store, runId);
  const current = record.attempts.find((a) => a.attempt === attempt);
  // The spot-warning handler marks the attempt SPOT_INTERRUPTED when it asks for the checkpoint;
  // only the agent's own Spot.Interrupted callback says the checkpoint went up and was reported.
  const lostMidCheckpoint =
    current?.endReason === 'SPOT_INTERRUPTED' && ['Instance.Lost', 'States.HeartbeatTimeout', 'Instance.NotReady'].includes(event.error.Error);
  const endReason = lostMidCheckpoint ? 'LOST_DURING_CHECKPOINT' : endReasonFor(event.error.Error);
  if (current !== undefined && (current.endReason === undefined || lostMidCheckpoint)) {
    await deps.store.updateAttempt(runId, attempt, { endReason });
  }
  const reasons = record.attempts.map((a) => (a.attempt === attempt ? endReason : a.endReason));
  if (current === undefined) reasons.push(endReason);
  const { interruptions, userFailures } = countEndReasons(reasons);
  const latest = await deps.artifacts.latestCheckpoint(runId);
  const spec = record.spec;
  if (current?.warnedAt !== undefined && current.checkpointCompletedAt === undefined && endReason === 'SPOT_INTERRUPTED' && latest?.attempt === attempt) {
    // The warned attempt's checkpointing is over (its agent called back): the checkpoint's own
    // time when it was written after the warning (EventBridge times have second precision), else
    // now — the agent found nothing newer to upload. The interruption's timeline (docs/recovery.md).
    const written = Date.parse(latest.createdAt) >= Date.parse(current.warnedAt) - 1000;
    await deps.store.updateAttempt(runId, attempt, { checkpointCompletedAt: written ? latest.createdAt : deps.clock().toISOString() });
  }

  // A cancel asked for while the attempt was failing wins over any retry.
  const cancelled = record.status === 'CANCELLING' || record.cancelRequested !== undefined;
  const decision = decide(
    {
      error: cancelled ? 'Run.Cancelled' : event.error.Error,
      cause: describeCause(event.error.Cause),
      attempt,
      interruptions,
      userFailures,
      instanceType: current?.instanceType,
      availabilityZone: current?.availabilityZone,
      spot: current?.spot ?? spec.instance.spot,
      latestCheckpoint: latest?.uri,
    },
    {
      maxInterruptions: spec.recovery.maxInterruptions,
      maxRestartsOnError: spec.recovery.maxRestartsOnError,
      // Capacity that was just reclaimed is the least likely to be there again soon.
      strategy: 'eager-next',
      instanceTypes: spec.instance.types,
      availabilityZones: spec.instance.availabilityZones,
      spot: spec.instance.spot,
      onDemandFallback: spec.instance.onDemandFallback,
    },
  );
  const latestCheckpoint = latest
    ? { uri: latest.uri, attempt: latest.attempt, createdAt: latest.createdAt, step: latest.step, epoch: latest.epoch }
    : undefined;
  if (decision.action === 'retry') {
    const from = LIVE_STATUSES.filter((s) => s !== 'PENDING' && s !== 'VALIDATING' && s !== 'CANCELLING');
    await deps.store.transition(runId, from, 'RECOVERING', {
      statusReason: decision.reason,
      interruptions,
      userFailures,
      latestCheckpoint,
    });
  }
  return decision;
}
