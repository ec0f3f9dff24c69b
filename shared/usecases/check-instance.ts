import { z } from 'zod';
import { InstanceLostError, InstanceNotReadyError } from '../errors';
import type { InstanceLifecycleState } from '../ports/compute';
import type { StepDeps } from './step-deps';
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
}

const GONE: ReadonlySet<InstanceLifecycleState> = new Set(['shutting-down', 'terminated', 'stopping', 'stopped', 'gone']);

/**
 * For a step whose SSM command failed: one look at the instance, so that a command that failed
 * because its instance died (or dropped out of SSM) ends in Instance.Lost / Instance.NotReady,
 * which recovery treats like an interruption, rather than as the command's own failure. Returns
 * when the instance is running with its agent online: then the failure was the command's.
 */
export async function failIfInstanceGone(deps: Pick<StepDeps, 'compute'>, instanceId: string, during: string): Promise<void> {
  const readiness = await deps.compute.readiness(instanceId);
  if (GONE.has(readiness.state)) throw new InstanceLostError(`Instance ${instanceId} is ${readiness.state} ${during}`);
  if (!readiness.agentOnline) {
    throw new InstanceNotReadyError(`Instance ${instanceId} is ${readiness.state} with its SSM agent offline ${during}`);
  }
}

/**
 * CheckInstance: one look at the instance in the bounded WaitForInstance loop. Ready means EC2
 * `running` and the SSM agent online. The loop's bound lives here, so the machine cannot spin.
 */
export async function checkInstance(event: CheckInstanceEvent, deps: StepDeps): Promise<CheckInstanceResult> {
  const readiness = await deps.compute.readiness(event.instanceId);
  const checks = event.checks + 1;
  if (GONE.has(readiness.state)) {
    throw new InstanceLostError(`Instance ${event.instanceId} is ${readiness.state} before training started`);
  }
  if (readiness.ready) return { ready: true, checks, state: readiness.state };
  if (checks >= deps.config.readinessMaxChecks) {
    throw new InstanceNotReadyError(
      `Instance ${event.instanceId} is ${readiness.state} with its SSM agent ${readiness.agentOnline ? 'online' : 'offline'} after ${checks} checks`,
    );
  }
  return { ready: false, checks, state: readiness.state };
}
