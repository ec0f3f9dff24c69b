import { InstanceLostError } from '../errors';
import { LOST_STATES, type InstanceStateChange } from '../events/ec2-events';
import { logger } from '../logger';
import type { Executions } from '../ports/executions';
import type { InstanceTags } from '../ports/instance-tags';
import type { RunStore } from '../ports/run-store';
import { nodeOnInstance } from '../domain/run-record';
import { ignored, staleAttemptReason, type InstanceEventOutcome } from './instance-event';

export interface InstanceStateDeps {
  instances: InstanceTags;
  store: Pick<RunStore, 'get' | 'clearTaskToken' | 'setTaskToken' | 'updateNode'>;
  executions: Pick<Executions, 'failTask'>;
}

const LOST: ReadonlySet<string> = new Set(LOST_STATES);
const INSTANCE_LOST = new InstanceLostError('').name;

/**
 * On an EC2 state change to shutting-down, terminated, stopping or stopped: if the instance
 * carries a live attempt that holds the LaunchTraining task token, fail that task with
 * Instance.Lost, so the execution recovers now instead of at the heartbeat timeout. The token is
 * cleared first with a conditional write, so of two duplicate events (EC2 sends shutting-down
 * and then terminated) only one fails the task. A stale token or a finished attempt is not an error.
 */
export async function onInstanceState(event: InstanceStateChange, deps: InstanceStateDeps): Promise<InstanceEventOutcome> {
  const instanceId = event.detail['instance-id'];
  const state = event.detail.state;
  if (!LOST.has(state)) return report(ignored(instanceId, `the instance is ${state}: nothing was lost`));

  const run = await deps.instances.runOf(instanceId);
  if (run === undefined) return report(ignored(instanceId, 'the instance carries no run tag of this stack'));
  const record = await deps.store.get(run.runId);
  const stale = staleAttemptReason(record, run, instanceId);
  if (stale !== undefined || record === undefined) return report(ignored(instanceId, stale ?? 'no record', run));

  // A node of a multi-node attempt: marked lost, so recovery replaces it alone (also before
  // LaunchTraining, when the polling steps are the ones to notice).
  const node = nodeOnInstance(record.attempts.at(-1), instanceId);
  if (node !== undefined && node.lostAt === undefined) await deps.store.updateNode(run.runId, run.attempt, node.rank, { lostAt: event.time });
  const token = record.taskToken;
  if (token === undefined || record.taskTokenAttempt !== run.attempt) {
    // Before LaunchTraining the polling steps see the instance go; after the callback nothing waits.
    return report(ignored(instanceId, `attempt ${run.attempt} holds no task token (run is ${record.status})`, run));
  }
  if (!(await deps.store.clearTaskToken(run.runId, token))) {
    return report(ignored(instanceId, 'duplicate event: the task token was already cleared', run));
  }

  const cause = JSON.stringify({
    reason: `Instance ${instanceId}${node === undefined ? '' : ` (node ${node.rank})`} of attempt ${run.attempt} is ${state}`,
    instanceId,
    attempt: run.attempt,
    state,
    at: event.time,
  });
  let failed: boolean;
  try {
    failed = await deps.executions.failTask(token, INSTANCE_LOST, cause);
  } catch (error) {
    // Put the token back so that the retried invocation can fail the task; if the attempt moved
    // on meanwhile, the write is refused and the retry finds nothing to do.
    await deps.store.setTaskToken(run.runId, run.attempt, token).catch((restoreError: unknown) => {
      logger.warn('could not restore the task token after SendTaskFailure failed', { ...run, restoreError });
    });
    throw error;
  }
  if (!failed) return report(ignored(instanceId, 'the task had already closed (stale token)', run));
  return report({ action: 'task-failed', instanceId, runId: run.runId, attempt: run.attempt, error: 'Instance.Lost' });
}

function report(outcome: InstanceEventOutcome): InstanceEventOutcome {
  logger.info(`instance state change: ${outcome.action}`, { outcome });
  return outcome;
}
