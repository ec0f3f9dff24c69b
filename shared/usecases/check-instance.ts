import { z } from 'zod';
import { InstanceLostError, InstanceNotReadyError } from '../errors';
import type { NodeState } from '../domain/run-record';
import { instanceGone, type InstanceLifecycleState } from '../ports/compute';
import { pollWaitSeconds } from '../domain/history-budget';
import { attemptLoops } from './attempt-loops';
import type { StepDeps } from './step-deps';
import { requireRun } from './step-event';
import { RunIdSchema } from './train-run-state';

export const CheckInstanceEventSchema = z.object({
  runId: RunIdSchema,
  instanceId: z.string().min(1),
  /** Checks made so far in this attempt's WaitForInstance loop. */
  checks: z.number().int().min(0),
});
export type CheckInstanceEvent = z.infer<typeof CheckInstanceEventSchema>;

export interface CheckInstanceResult {
  ready: boolean;
  checks: number;
  state: InstanceLifecycleState;
  /** WaitForInstance's pause before the next check. */
  waitSeconds: number;
}

/**
 * For a step whose SSM command failed: one look at the instance, so that a command that failed
 * because its instance died (or dropped out of SSM) ends in Instance.Lost / Instance.NotReady,
 * which recovery treats like an interruption, rather than as the command's own failure. Returns
 * when the instance is running with its agent online: then the failure was the command's.
 */
export async function failIfInstanceGone(deps: Pick<StepDeps, 'compute'>, instanceId: string, during: string): Promise<void> {
  const readiness = await deps.compute.readiness(instanceId);
  if (instanceGone(readiness.state)) throw new InstanceLostError(`Instance ${instanceId} is ${readiness.state} ${during}`);
  if (!readiness.agentOnline) {
    throw new InstanceNotReadyError(`Instance ${instanceId} is ${readiness.state} with its SSM agent offline ${during}`);
  }
}

/**
 * CheckInstance: one look at the instance in the bounded WaitForInstance loop. Ready means EC2
 * `running` and the SSM agent online. The loop's bound lives here, so the machine cannot spin:
 * the run's share of its execution's event budget sets the checks and their pauses.
 */
export async function checkInstance(event: CheckInstanceEvent, deps: StepDeps): Promise<CheckInstanceResult> {
  const record = await requireRun(deps.store, event.runId);
  const loop = attemptLoops(record.spec, deps.config).readiness;
  const checks = event.checks + 1;
  const waitSeconds = pollWaitSeconds(loop, checks);
  const attempt = record.attempts.at(-1);
  if (attempt?.nodes !== undefined && attempt.instanceId === event.instanceId) {
    return checkNodes(record.runId, attempt.attempt, attempt.nodes, { checks, waitSeconds, maxChecks: loop.maxPolls }, deps);
  }
  const readiness = await deps.compute.readiness(event.instanceId);
  if (instanceGone(readiness.state)) {
    throw new InstanceLostError(`Instance ${event.instanceId} is ${readiness.state} before training started`);
  }
  if (readiness.ready) return { ready: true, checks, state: readiness.state, waitSeconds };
  if (checks >= loop.maxPolls) {
    throw new InstanceNotReadyError(
      `Instance ${event.instanceId} is ${readiness.state} with its SSM agent ${readiness.agentOnline ? 'online' : 'offline'} after ${checks} checks`,
    );
  }
  return { ready: false, checks, state: readiness.state, waitSeconds };
}

/**
 * The readiness check of a multi-node attempt: ready when every node is. Each node not yet ready
 * is looked at once per check (a kept node was ready before and is not asked again), and a node
 * that went away fails the check with Instance.Lost naming its rank, so recovery replaces it.
 */
async function checkNodes(
  runId: string,
  attempt: number,
  nodes: readonly NodeState[],
  loop: { checks: number; waitSeconds: number; maxChecks: number },
  deps: StepDeps,
): Promise<CheckInstanceResult> {
  const waiting = nodes.filter((n) => n.readyAt === undefined);
  const looks = await Promise.all(waiting.map(async (node) => ({ node, readiness: await deps.compute.readiness(node.instanceId) })));
  for (const { node, readiness } of looks) {
    if (instanceGone(readiness.state)) {
      await deps.store.updateNode(runId, attempt, node.rank, { lostAt: deps.clock().toISOString() });
      throw new InstanceLostError(`Node ${node.rank} (${node.instanceId}) is ${readiness.state} before training started`);
    }
    if (readiness.ready) await deps.store.updateNode(runId, attempt, node.rank, { readyAt: deps.clock().toISOString() });
  }
  const notReady = looks.filter((l) => !l.readiness.ready);
  if (notReady.length === 0) return { ready: true, checks: loop.checks, state: 'running', waitSeconds: loop.waitSeconds };
  if (loop.checks >= loop.maxChecks) {
    throw new InstanceNotReadyError(
      `${notReady.length} of ${nodes.length} nodes not ready after ${loop.checks} checks: ` +
        notReady.map((l) => `node ${l.node.rank} (${l.node.instanceId}) is ${l.readiness.state}, SSM agent ${l.readiness.agentOnline ? 'online' : 'offline'}`).join('; '),
    );
  }
  return { ready: false, checks: loop.checks, state: notReady[0]?.readiness.state ?? 'pending', waitSeconds: loop.waitSeconds };
}
