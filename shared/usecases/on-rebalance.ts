import type { RebalanceRecommendation } from '../events/ec2-events';
import { logger } from '../logger';
import type { AttemptSignals } from '../ports/attempt-signals';
import type { Compute } from '../ports/compute';
import type { InstanceRun, InstanceTags } from '../ports/instance-tags';
import type { RunStore } from '../ports/run-store';
import { checkpointEveryNode, checkpointInstance } from './checkpoint-request';
import { ignored, liveNodeOf, staleAttemptReason, type InstanceEventOutcome } from './instance-event';

export interface RebalanceDeps {
  instances: InstanceTags;
  signals: AttemptSignals;
  /** Read to explain an ignored event, and for a multi-node run (its nodes; the recommended one is marked). */
  store: Pick<RunStore, 'get' | 'updateNode'>;
  compute: Pick<Compute, 'sendCommand'>;
}

/** SSM gives up delivering after this long: the recommendation comes well before any warning. */
const DELIVERY_TIMEOUT_SECONDS = 300;

/**
 * On an EC2 rebalance recommendation (the instance is at elevated risk of interruption): when
 * the run's spec has `recovery.checkpointOnRebalance`, record it and ask the agent for a
 * checkpoint now. The agent checkpoints and calls back Spot.Interrupted, so the run moves to a
 * fresh instance before the two-minute warning instead of racing it. The record write is
 * conditional on the spec's flag and on the attempt, so no read comes first, and a duplicate
 * recommendation asks only once.
 */
export async function onRebalance(event: RebalanceRecommendation, deps: RebalanceDeps): Promise<InstanceEventOutcome> {
  const instanceId = event.detail['instance-id'];
  const run = await deps.instances.runOf(instanceId);
  if (run === undefined) return report(ignored(instanceId, 'the instance carries no run tag of this stack'));

  if (run.nodes !== undefined) return report(await onNodeRebalance(event, run, deps));

  const marked = await deps.signals.markRebalanceCheckpoint({ runId: run.runId, attempt: run.attempt, instanceId, at: event.time });
  if (!marked) return report(ignored(instanceId, await whyNotMarked(deps, run, instanceId), run));

  // An early checkpoint is an optimisation: the spot warning, if it comes, still checkpoints.
  return report(
    await checkpointInstance(deps.compute, instanceId, {
      runId: run.runId,
      attempt: run.attempt,
      reason: 'requested',
      timeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
      comment: `runctl checkpoint ${run.runId} attempt ${run.attempt}: rebalance recommendation`,
    }),
  );
}

/**
 * A recommendation for one node of a multi-node run: as a warning on a node (on-spot-warning.ts),
 * the mark names rank 0's instance (the attempt's), every node is asked to save, since their
 * collectives stop together, and the recommended node is marked so that recovery replaces it
 * alone and keeps the others. One read more than for one node (the nodes).
 */
async function onNodeRebalance(event: RebalanceRecommendation, run: InstanceRun, deps: RebalanceDeps): Promise<InstanceEventOutcome> {
  const instanceId = event.detail['instance-id'];
  const live = liveNodeOf(await deps.store.get(run.runId), run, instanceId);
  if ('ignored' in live) return ignored(instanceId, live.ignored, run);
  const { attempt, node } = live;
  const marked = await deps.signals.markRebalanceCheckpoint({
    runId: run.runId,
    attempt: run.attempt,
    instanceId: attempt.instanceId,
    at: event.time,
    recommendedInstance: `node ${node.rank} (${instanceId})`,
  });
  if (!marked) return ignored(instanceId, await whyNotMarked(deps, run, attempt.instanceId), run);
  return checkpointEveryNode(deps, live, event.time, {
    reason: 'requested',
    timeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
    comment: `runctl checkpoint ${run.runId} attempt ${run.attempt}: rebalance recommendation for node ${node.rank}`,
  });
}

async function whyNotMarked(deps: RebalanceDeps, run: { runId: string; attempt: number }, instanceId: string): Promise<string> {
  const record = await deps.store.get(run.runId);
  const stale = staleAttemptReason(record, run, instanceId);
  if (stale !== undefined || record === undefined) return stale ?? 'no record';
  if (!record.spec.recovery.checkpointOnRebalance) return 'the run does not ask for recovery.checkpointOnRebalance';
  if (record.status !== 'TRAINING') return `run is ${record.status}, not TRAINING: no checkpoint to ask for`;
  return `duplicate recommendation: an early checkpoint of attempt ${run.attempt} was already asked for`;
}

function report(outcome: InstanceEventOutcome): InstanceEventOutcome {
  logger.info(`rebalance recommendation: ${outcome.action}`, { outcome });
  return outcome;
}
