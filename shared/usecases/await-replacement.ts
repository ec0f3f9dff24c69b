import { z } from 'zod';
import { ReplacementSettledError } from '../errors';
import type { RunStore } from '../ports/run-store';
import { RunIdSchema } from './train-run-state';

export const AwaitReplacementEventSchema = z.object({
  runId: RunIdSchema,
  /** The attempt about to start (the warned one + 1), whose instance the replacement is to be. */
  attempt: z.number().int().min(2),
  /** The replacement launched on the warning. */
  instanceId: z.string().min(1),
  /** `$$.Task.Token` of the waiting AwaitReplacement state. */
  taskToken: z.string().min(1),
});
export type AwaitReplacementEvent = z.infer<typeof AwaitReplacementEventSchema>;

/**
 * What prepare-replacement sends the wait (SendTaskSuccess output, kept at `$.replacementWait` for
 * the execution's history): whether the replacement is ready with its data, and why not.
 * AdoptReplacement reads the record, not this, to decide.
 */
export interface ReplacementWaitOutcome {
  prepared: boolean;
  reason: string;
}

/**
 * AwaitReplacement (`.waitForTaskToken`): the next attempt waits for the instance launched on the
 * warning, instead of polling it at the machine's readiness and prefetch pauses. The token goes on
 * the record only while the replacement is still being prepared; prepare-replacement ends the wait
 * the moment it records the replacement ready with its data, or gives it up. When there is nothing
 * to wait for (ready or released already), the task fails at once with Replacement.Settled and the
 * machine adopts it (or launches) straight away.
 */
export async function awaitReplacement(event: AwaitReplacementEvent, deps: { store: Pick<RunStore, 'awaitReplacement'> }): Promise<void> {
  const stored = await deps.store.awaitReplacement(event.runId, event.attempt - 1, event.instanceId, event.taskToken);
  if (!stored) {
    throw new ReplacementSettledError(`Replacement ${event.instanceId} for attempt ${event.attempt} is no longer being prepared: nothing to wait for`);
  }
}
