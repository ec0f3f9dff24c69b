import { endReasonFor } from '../domain/recovery';
import type { Attempt, NodeState } from '../domain/run-record';
import { ConflictError } from '../errors';
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
  // A multi-node attempt that ends in a retry after a node was warned or lost keeps its healthy
  // nodes (with their copied data) for the next attempt: only the lost ones go.
  const kept = state.recovery?.action === 'retry' && deps.config.nodeRecovery !== 'relaunch-all' ? healthyNodes(newest) : [];
  for (const node of kept) ids.delete(node.instanceId);
  // Recorded before the terminations: their state-change events then find released nodes, not lost ones.
  const released = deps.clock().toISOString();
  for (const node of newest?.nodes ?? []) {
    if (newest === undefined || node.releasedAt !== undefined || kept.includes(node)) continue;
    await deps.store.updateNode(runId, newest.attempt, node.rank, { releasedAt: released }).catch((error: unknown) => {
      logger.warn('could not record a released node', { runId, rank: node.rank, error });
    });
  }
  for (const instanceId of ids) await deps.compute.terminate(instanceId);
  // The run's network goes with its last nodes; still in use (instances shutting down): the reconciler deletes it later.
  if (record?.network !== undefined && kept.length === 0 && deps.networks !== undefined) {
    await deps.networks.release(runId).catch((error: unknown) => {
      if (!(error instanceof ConflictError)) throw error;
      logger.warn('run network left for the reconciler', { runId, error: error.message });
    });
  }
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
  // A wait for a replacement ends before the attempt does; a token left by a timed-out one goes too.
  if (record?.replacementToken !== undefined) await deps.store.clearReplacementToken(runId, record.replacementToken);
  logger.info('released', { runId, terminated: [...ids], latestCheckpoint: latest?.uri });
  return { terminated: [...ids], latestCheckpoint: latest?.uri ?? null };
}

/**
 * The nodes of a multi-node attempt to keep across its recovery: only when some node was warned
 * or lost (that node is the one replaced), and only those neither warned, lost nor released.
 * After any other failure (a script error, a heartbeat timeout of the whole attempt) every node goes.
 */
function healthyNodes(attempt: Attempt | undefined): NodeState[] {
  const nodes = attempt?.nodes ?? [];
  const lost = nodes.filter((n) => n.warnedAt !== undefined || n.lostAt !== undefined);
  if (lost.length === 0 || lost.length === nodes.length) return [];
  return nodes.filter((n) => !lost.includes(n) && n.releasedAt === undefined);
}
