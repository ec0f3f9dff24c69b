import { checkpointNowCommand } from '../agent/commands';
import type { RebalanceRecommendation } from '../events/ec2-events';
import { logger } from '../logger';
import type { AttemptSignals } from '../ports/attempt-signals';
import type { Compute } from '../ports/compute';
import type { InstanceTags } from '../ports/instance-tags';
import type { RunStore } from '../ports/run-store';
import { ignored, staleAttemptReason, type InstanceEventOutcome } from './instance-event';

export interface RebalanceDeps {
  instances: InstanceTags;
  signals: AttemptSignals;
  /** Read only to explain an ignored event. */
  store: Pick<RunStore, 'get'>;
  compute: Pick<Compute, 'sendCommand'>;
}

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

  const marked = await deps.signals.markRebalanceCheckpoint({ runId: run.runId, attempt: run.attempt, instanceId, at: event.time });
  if (!marked) return report(ignored(instanceId, await whyNotMarked(deps, run, instanceId), run));

  let commandId: string | null = null;
  try {
    commandId = await deps.compute.sendCommand(instanceId, checkpointNowCommand(run.runId, run.attempt, 'requested'), {
      timeoutSeconds: 300,
      comment: `runctl checkpoint ${run.runId} attempt ${run.attempt}: rebalance recommendation`,
    });
  } catch (error) {
    // An early checkpoint is an optimisation: the spot warning, if it comes, still checkpoints.
    logger.warn('early checkpoint command not delivered', { instanceId, ...run, error });
  }
  return report({ action: 'checkpoint-requested', instanceId, runId: run.runId, attempt: run.attempt, commandId });
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
