import { nodeCount } from '../domain/multi-node';
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
 *
 * With `recovery.preProvisionOnRebalance` and without `checkpointOnRebalance` (one node), the
 * recommendation starts a handover instead: it is recorded, no command goes out, and the answer
 * (`replacement-requested`) starts prepare-replacement, which launches the next attempt's
 * instance and copies the data while this one trains on, then asks this one for its checkpoint.
 */
export async function onRebalance(event: RebalanceRecommendation, deps: RebalanceDeps): Promise<InstanceEventOutcome> {
  const instanceId = event.detail['instance-id'];
  const run = await deps.instances.runOf(instanceId);
  if (run === undefined) return report(ignored(instanceId, 'the instance carries no run tag of this stack'));

  if (run.nodes !== undefined) return report(await onNodeRebalance(event, run, deps));

  const ref = { runId: run.runId, attempt: run.attempt, instanceId, at: event.time };
  const marked = await deps.signals.markRebalanceCheckpoint(ref);
  if (!marked) {
    // The handover: the replacement is launched now and the attempt trains on until it is ready
    // (prepare-replacement then asks for the checkpoint). Its answer starts prepare-replacement.
    if (await deps.signals.markRebalanceHandover(ref)) {
      return report({ action: 'replacement-requested', instanceId, runId: run.runId, attempt: run.attempt });
    }
    return report(ignored(instanceId, await whyNotMarked(deps, run, instanceId), run));
  }

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
  const { checkpointOnRebalance, preProvisionOnRebalance } = record.spec.recovery;
  if (!checkpointOnRebalance && !preProvisionOnRebalance) return 'the run asks for neither recovery.checkpointOnRebalance nor recovery.preProvisionOnRebalance';
  if (!checkpointOnRebalance && nodeCount(record.spec) > 1) return 'a multi-node run acts on a recommendation only with recovery.checkpointOnRebalance';
  if (record.status !== 'TRAINING') return `run is ${record.status}, not TRAINING: no checkpoint to ask for`;
  return `duplicate recommendation: attempt ${run.attempt} already acted on one`;
}

function report(outcome: InstanceEventOutcome): InstanceEventOutcome {
  logger.info(`rebalance recommendation: ${outcome.action}`, { outcome });
  return outcome;
}
