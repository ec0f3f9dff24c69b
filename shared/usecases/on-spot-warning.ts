import type { SpotInterruptionWarning } from '../events/ec2-events';
import { logger } from '../logger';
import type { AttemptSignals } from '../ports/attempt-signals';
import type { Compute } from '../ports/compute';
import type { InstanceRun, InstanceTags } from '../ports/instance-tags';
import type { RunStore } from '../ports/run-store';
import { checkpointEveryNode, checkpointInstance } from './checkpoint-request';
import { attemptOf, ignored, liveNodeOf, staleAttemptReason, type InstanceEventOutcome } from './instance-event';

export interface SpotWarningDeps {
  instances: InstanceTags;
  signals: AttemptSignals;
  /**
   * Read only when the instance lacks the owner tag, to explain an ignored event, or for a
   * multi-node run (its other nodes, and which node the warning was for).
   */
  store: Pick<RunStore, 'get' | 'updateNode'>;
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
  if (run.nodes !== undefined) return report(await onNodeWarning(event, run, deps));

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

  return report(
    await checkpointInstance(deps.compute, instanceId, {
      runId: run.runId,
      attempt: run.attempt,
      reason: 'spot-warning',
      timeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
      comment: `runctl checkpoint ${run.runId} attempt ${run.attempt}: spot interruption`,
    }),
  );
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

/**
 * A warning for one node of a multi-node run (docs/multi-node.md, "Recovery"): the run is marked
 * CHECKPOINTING on its attempt (the write's conditions name rank 0's instance, the attempt's),
 * every node is asked to save (rank 0 uploads the checkpoint, or every rank its part), and the
 * warned node is marked so that recovery replaces it alone. One read more than a single-node
 * warning (the nodes), and one command per node, sent in parallel. A second node warned while
 * the first one's checkpoint goes on is marked too: its agent already has the stop signal.
 */
async function onNodeWarning(event: SpotInterruptionWarning, run: InstanceRun, deps: SpotWarningDeps): Promise<InstanceEventOutcome> {
  const instanceId = event.detail['instance-id'];
  const live = liveNodeOf(await deps.store.get(run.runId), run, instanceId);
  if ('ignored' in live) return ignored(instanceId, live.ignored, run);
  const { record, attempt, node } = live;
  const marked = await deps.signals.markSpotInterrupted({
    runId: run.runId,
    attempt: run.attempt,
    instanceId: attempt.instanceId,
    owner: run.owner ?? record.owner,
    noticedAt: event.time,
    action: event.detail['instance-action'],
    warnedInstance: `node ${node.rank} (${instanceId})`,
  });
  if (!marked) {
    if (record.status === 'CHECKPOINTING' || (await deps.store.get(run.runId))?.status === 'CHECKPOINTING') {
      if (node.warnedAt === undefined) await deps.store.updateNode(run.runId, run.attempt, node.rank, { warnedAt: event.time });
      return ignored(instanceId, `another node's warning already asked every node of attempt ${run.attempt} to checkpoint; node ${node.rank} is replaced too`, run);
    }
    return ignored(instanceId, await whyNotMarked(deps, run, attempt.instanceId), run);
  }
  // A node the command misses: the warned agent's own metadata poll sees the notice; the others
  // fail their collectives and report, and rank 0's report (or the loss of the instance) decides.
  return checkpointEveryNode(deps, live, event.time, {
    reason: 'spot-warning',
    timeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
    comment: `runctl checkpoint ${run.runId} attempt ${run.attempt}: spot interruption of node ${node.rank}`,
  });
}
