import { z } from 'zod';
import { buildAgentLaunchCommand } from '../agent/commands';
import { buildTrainingArgv } from '../domain/hyperparameters';
import { runPrefix } from '../ports/artifacts';
import type { StepDeps } from './step-deps';
import { requireRun } from './step-event';
import { RunIdSchema } from './train-run-state';

export const LaunchTrainingEventSchema = z.object({
  runId: RunIdSchema,
  attempt: z.number().int().min(1),
  instanceId: z.string().min(1),
  resumeFrom: z.string().nullable(),
  /** `$$.Task.Token` of the waiting LaunchTraining state. */
  taskToken: z.string().min(1),
});
export type LaunchTrainingEvent = z.infer<typeof LaunchTrainingEventSchema>;

/**
 * LaunchTraining: stores the task token on the run record (the agent reads it there, so it never
 * appears in the command text, a log or a tag), then starts the agent detached through SSM and
 * returns. The execution waits for the agent's callback at no cost per hour.
 */
export async function launchTraining(event: LaunchTrainingEvent, deps: StepDeps): Promise<{ commandId: string }> {
  const { runId, attempt, instanceId } = event;
  const record = await requireRun(deps.store, runId);
  const spec = record.spec;
  await deps.store.transition(runId, ['STARTING', 'PREFETCHING', 'TRAINING'], 'TRAINING', {
    statusReason: `Training on ${instanceId} (attempt ${attempt}${event.resumeFrom ? `, resuming from ${event.resumeFrom}` : ''})`,
  });
  // Before the command: the agent waits for the token of its own attempt on the record.
  await deps.store.setTaskToken(runId, attempt, event.taskToken);
  const command = buildAgentLaunchCommand({
    runId,
    attempt,
    region: deps.config.region,
    bucket: deps.config.bucket,
    runPrefix: runPrefix(runId),
    codeBundle: spec.code.bundle,
    resumeFrom: event.resumeFrom ?? undefined,
    argv: buildTrainingArgv(spec),
    env: spec.env,
    checkpoint: spec.checkpoint,
    metricDefinitions: spec.metricDefinitions,
    heartbeatSeconds: deps.config.heartbeatSeconds,
    tokenSource: { table: deps.config.table, runId },
  });
  const commandId = await deps.compute.sendCommand(instanceId, command, {
    comment: `runctl train ${runId} attempt ${attempt}`,
  });
  return { commandId };
}
