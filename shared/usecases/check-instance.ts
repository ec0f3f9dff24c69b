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
