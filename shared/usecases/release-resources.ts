import { endReasonFor } from '../domain/recovery';
import { logger } from '../logger';
import type { StepDeps } from './step-deps';
import type { ExecutionState } from './train-run-state';

export interface ReleaseResult {
  terminated: string[];
  /** The newest complete checkpoint, confirmed in S3 before anything was terminated. */
  latestCheckpoint: string | null;
}

/**
 * ReleaseResources: reached from every path, so it assumes nothing about how far the run got.
 * It first confirms the newest checkpoint in S3 (if S3 cannot be read, the step fails and is
 * retried before any instance goes), then terminates every instance the run may own — the one
 * in the state, those of unfinished attempts on the record, and any still tagged with the run —
 * ends those attempts and clears the task token. Every part is idempotent.
 */
export async function releaseResources(state: ExecutionState & { runId: string }, deps: StepDeps): Promise<ReleaseResult> {
  const { runId } = state;
  const record = await deps.store.get(runId);
  const latest = await deps.artifacts.latestCheckpoint(runId);

  const ids = new Set<string>();
  const fromState = state.provision?.instance?.instanceId;
  if (fromState) ids.add(fromState);
  for (const attempt of record?.attempts ?? []) {
    if (attempt.instanceId && attempt.endedAt === undefined) ids.add(attempt.instanceId);
  }
  // An instance launched by a ProvisionInstance that failed before recording it.
  for (const tagged of await deps.compute.listTaggedInstances()) {
    if (tagged.runId === runId && tagged.state !== 'terminated' && tagged.state !== 'gone') ids.add(tagged.instanceId);
  }
  // The next attempt's instance, launched on the spot warning and prepared meanwhile, is kept for
  // that attempt's ProvisionInstance to adopt; on every other path it goes with the rest.
  const newest = record?.attempts.at(-1);
  const replacement = newest?.replacement;
  const keep =
    replacement !== undefined &&
    replacement.releasedAt === undefined &&
    state.recovery?.action === 'retry' &&
    state.recovery.nextAttempt === replacement.attempt
      ? replacement.instanceId
      : undefined;
  if (keep !== undefined) ids.delete(keep);
  for (const instanceId of ids) await deps.compute.terminate(instanceId);
  if (newest !== undefined && replacement !== undefined && keep === undefined && replacement.releasedAt === undefined) {
    // Billed until now, though it never trained (docs/costs.md).
    await deps.store.updateAttempt(runId, newest.attempt, { replacement: { ...replacement, releasedAt: deps.clock().toISOString() } });
  }

  const now = deps.clock().toISOString();
  const endReason = endReasonFor(state.error?.Error);
  for (const attempt of record?.attempts ?? []) {
    if (attempt.endedAt === undefined) {
      await deps.store.updateAttempt(runId, attempt.attempt, { endedAt: now, endReason: attempt.endReason ?? endReason });
    }
  }
  if (record?.taskToken !== undefined) await deps.store.clearTaskToken(runId, record.taskToken);
  logger.info('released', { runId, terminated: [...ids], latestCheckpoint: latest?.uri });
  return { terminated: [...ids], latestCheckpoint: latest?.uri ?? null };
}
