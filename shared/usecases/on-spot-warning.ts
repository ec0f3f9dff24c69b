import { checkpointNowCommand } from '../agent/commands';
import type { SpotInterruptionWarning } from '../events/ec2-events';
import { logger } from '../logger';
import type { AttemptSignals } from '../ports/attempt-signals';
import type { Compute } from '../ports/compute';
import type { InstanceRun, InstanceTags } from '../ports/instance-tags';
import type { RunStore } from '../ports/run-store';
import { attemptInstanceIds, nodeOnInstance } from '../domain/run-record';
import { attemptOf, ignored, staleAttemptReason, type InstanceEventOutcome } from './instance-event';

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
  if (!marked) {
    // A second node of a multi-node run warned while the first one's checkpoint goes on: this
    // node is replaced too, and its agent already has the stop signal.
    if (run.nodes !== undefined && (await markWarnedNode(deps, run.runId, instanceId, event.time))) {
      return report(ignored(instanceId, `another node's warning already asked every node of attempt ${run.attempt} to checkpoint; this node is replaced too`, run));
    }
    return report(ignored(instanceId, await whyNotMarked(deps, run, instanceId), run));
  }
  if (run.nodes !== undefined) return report(await checkpointEveryNode(deps, run, instanceId, event.time));

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

/**
 * A warning for one node of a multi-node run (docs/multi-node.md, "Recovery"): every node saves
 * (rank 0 uploads the checkpoint, or every rank its part), and the warned node is marked so that
 * recovery replaces it alone. One more read than a single-node warning, and one command per node,
 * sent in parallel.
 */
async function checkpointEveryNode(deps: SpotWarningDeps, run: InstanceRun, instanceId: string, at: string): Promise<InstanceEventOutcome> {
  const record = await deps.store.get(run.runId);
  const attempt = record?.attempts.find((a) => a.attempt === run.attempt);
  const node = nodeOnInstance(attempt, instanceId);
  const targets = attempt === undefined ? [instanceId] : attemptInstanceIds(attempt);
  const sends = await Promise.allSettled(
    targets.map((target) =>
      deps.compute.sendCommand(target, checkpointNowCommand(run.runId, run.attempt, 'spot-warning'), {
        timeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
        comment: `runctl checkpoint ${run.runId} attempt ${run.attempt}: spot interruption of ${instanceId}`,
      }),
    ),
  );
  if (node !== undefined) await deps.store.updateNode(run.runId, run.attempt, node.rank, { warnedAt: at });
  sends.forEach((sent, i) => {
    if (sent.status === 'rejected') logger.error('checkpoint command not delivered to a node', { instanceId: targets[i], ...run, error: sent.reason });
  });
  const own = sends[targets.indexOf(instanceId)];
  const commandId = own?.status === 'fulfilled' ? own.value : null;
  return { action: 'checkpoint-requested', instanceId, runId: run.runId, attempt: run.attempt, commandId };
}

/** Marks a node of the run's newest live attempt as warned; false when the instance is no such node. */
async function markWarnedNode(deps: SpotWarningDeps, runId: string, instanceId: string, at: string): Promise<boolean> {
  const record = await deps.store.get(runId);
  const attempt = record?.attempts.at(-1);
  const node = nodeOnInstance(attempt, instanceId);
  if (record === undefined || attempt === undefined || node === undefined || attempt.endedAt !== undefined || record.status !== 'CHECKPOINTING') return false;
  if (node.warnedAt === undefined) await deps.store.updateNode(runId, attempt.attempt, node.rank, { warnedAt: at });
  return true;
}
