import { checkpointNowCommand } from '../agent/commands';
import { attemptInstanceIds } from '../domain/run-record';
import { logger } from '../logger';
import type { Compute } from '../ports/compute';
import type { RunStore } from '../ports/run-store';
import type { InstanceEventOutcome, LiveNode } from './instance-event';

/** What asks an attempt's agents to save now, and why. */
export interface CheckpointRequest {
  runId: string;
  attempt: number;
  /**
   * Why, in the agent's log (it saves and stops the same way for each): `spot-warning`;
   * `requested`, an early checkpoint on a rebalance recommendation; `handover`, the replacement
   * launched on a recommendation is ready.
   */
  reason: 'spot-warning' | 'requested' | 'handover';
  /** SSM gives up delivering after this long. */
  timeoutSeconds: number;
  /** The command's comment, seen in the SSM console: what asked for it. */
  comment: string;
}

/**
 * Sends "checkpoint now" to every instance of `instanceIds` in parallel (one node, or every node of
 * a multi-node attempt) and answers each one's command id, or null where it was not delivered.
 * A failed send is logged, not thrown: the agent's own metadata poll sees a spot notice, and an
 * instance that dies first is caught by the instance-state handler, so a retried event handler
 * would only find the run already marked and send nothing.
 */
export async function requestCheckpoint(compute: Pick<Compute, 'sendCommand'>, instanceIds: readonly string[], request: CheckpointRequest): Promise<(string | null)[]> {
  const command = checkpointNowCommand(request.runId, request.attempt, request.reason);
  const sends = await Promise.allSettled(
    instanceIds.map((instanceId) => compute.sendCommand(instanceId, command, { timeoutSeconds: request.timeoutSeconds, comment: request.comment })),
  );
  return sends.map((sent, i) => {
    if (sent.status === 'fulfilled') return sent.value;
    logger.error('checkpoint command not delivered', { instanceId: instanceIds[i], runId: request.runId, attempt: request.attempt, error: String(sent.reason) });
    return null;
  });
}

/** The end of a warning or recommendation on a single-node run, once the attempt is marked: its agent is asked to save. */
export async function checkpointInstance(
  compute: Pick<Compute, 'sendCommand'>,
  instanceId: string,
  request: CheckpointRequest,
): Promise<InstanceEventOutcome> {
  const [commandId = null] = await requestCheckpoint(compute, [instanceId], request);
  return { action: 'checkpoint-requested', instanceId, runId: request.runId, attempt: request.attempt, commandId };
}

/**
 * The end of a warning or recommendation on one node of a multi-node run, once the attempt is
 * marked: the node is marked `warnedAt` (recovery replaces it alone), and every node is asked
 * to save, since their collectives stop together. The answer names the node's own command.
 */
export async function checkpointEveryNode(
  deps: { store: Pick<RunStore, 'updateNode'>; compute: Pick<Compute, 'sendCommand'> },
  { attempt, node, record }: LiveNode,
  at: string,
  request: Omit<CheckpointRequest, 'runId' | 'attempt'>,
): Promise<InstanceEventOutcome> {
  await deps.store.updateNode(record.runId, attempt.attempt, node.rank, { warnedAt: at });
  const targets = attemptInstanceIds(attempt);
  const commandIds = await requestCheckpoint(deps.compute, targets, { ...request, runId: record.runId, attempt: attempt.attempt });
  return { action: 'checkpoint-requested', instanceId: node.instanceId, runId: record.runId, attempt: attempt.attempt, commandId: commandIds[targets.indexOf(node.instanceId)] ?? null };
}
