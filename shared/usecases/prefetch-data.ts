import { z } from 'zod';
import { PREFETCH_EXIT, prefetchCommand } from '../agent/commands';
import { PrecheckFailedError, RunctlError } from '../errors';
import { logger } from '../logger';
import { failIfInstanceGone } from './check-instance';
import { pollWaitSeconds } from '../domain/history-budget';
import { attemptLoops, COMMAND_POLL_BASE_SECONDS, PREFETCH_TIMEOUT_SECONDS } from './attempt-loops';
import { requireControlEndpoint, type StepDeps } from './step-deps';
import { requireRun } from './step-event';
import { RunIdSchema } from './train-run-state';

/** The copy did not finish within the poll budget, or failed for a reason other than the source. */
export class PrefetchFailedError extends RunctlError {
  override name = 'Prefetch.Failed';
}

export const PrefetchDataEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('start'), runId: RunIdSchema, attempt: z.number().int().min(1), instanceId: z.string().min(1) }),
  z.object({
    action: z.literal('check'),
    runId: RunIdSchema,
    instanceId: z.string().min(1),
    commandId: z.string().min(1),
    polls: z.number().int().min(0),
  }),
]);
export type PrefetchDataEvent = z.infer<typeof PrefetchDataEventSchema>;

/** `waitSeconds`: WaitForPrefetch's pause before the next poll. */
export type PrefetchResult =
  | { skipped: true; done: true }
  | { skipped: false; done: false; commandId: string; polls: number; waitSeconds: number }
  | { skipped: false; done: true; commandId: string; polls: number; bytes: number; seconds: number };

const PrefetchLineSchema = z.object({ source: z.string(), bytes: z.number(), seconds: z.number() });

/**
 * PrefetchData: starts the SSM command that copies each data source onto the instance (the
 * machine polls it with a Wait loop; no Lambda sleeps), then reads its outcome. A missing or
 * denied source, or a copy that does not match its dataset manifest, is the user's to fix:
 * Run.PrecheckFailed.
 */
export async function prefetchData(event: PrefetchDataEvent, deps: StepDeps): Promise<PrefetchResult> {
  if (event.action === 'start') {
    const record = await requireRun(deps.store, event.runId);
    if (record.spec.data.length === 0) return { skipped: true, done: true };
    // The replacement launched on the spot warning copied the data while the old instance checkpointed.
    const replacement = record.attempts.find((a) => a.attempt === event.attempt - 1)?.replacement;
    const adopted = replacement?.instanceId === event.instanceId ? replacement : undefined;
    if (adopted?.dataReadyAt !== undefined) return { skipped: true, done: true };
    await deps.store.transition(event.runId, ['STARTING', 'ATTACHING_VOLUME', 'PREFETCHING'], 'PREFETCHING', {
      statusReason: `Copying ${record.spec.data.length} data source(s) to ${event.instanceId}`,
    });
    // Adopted mid-copy (the checkpoint was done first): wait for that copy rather than start a
    // second one that would share the instance's link with it and take as long again.
    if (adopted?.copyCommandId !== undefined) {
      return { skipped: false, done: false, commandId: adopted.copyCommandId, polls: 0, waitSeconds: COMMAND_POLL_BASE_SECONDS };
    }
    const commandId = await deps.compute.sendCommand(event.instanceId, prefetchCommand(record.spec.data, {
      endpoint: requireControlEndpoint(deps.config),
      region: deps.config.region,
      runId: event.runId,
      attempt: event.attempt,
    }), {
      comment: `runctl prefetch ${event.runId} attempt ${event.attempt}`,
      timeoutSeconds: PREFETCH_TIMEOUT_SECONDS,
    });
    return { skipped: false, done: false, commandId, polls: 0, waitSeconds: COMMAND_POLL_BASE_SECONDS };
  }

  // The poll budget is the run's share of its execution's history (see attempt-loops.ts).
  const loop = attemptLoops((await requireRun(deps.store, event.runId)).spec, deps.config).prefetch;
  const result = await deps.compute.commandResult(event.instanceId, event.commandId);
  const polls = event.polls + 1;
  const base = { skipped: false as const, commandId: event.commandId, polls };
  if (result.status === 'Pending' || result.status === 'InProgress' || result.status === 'Delayed') {
    if (loop === undefined || polls >= loop.maxPolls) {
      await failIfInstanceGone(deps, event.instanceId, 'during the prefetch');
      throw new PrefetchFailedError(`Prefetch command ${event.commandId} still ${result.status} after ${polls} polls`);
    }
    return { ...base, done: false, waitSeconds: pollWaitSeconds(loop, polls) };
  }
  const message = (result.stderr.trim().split('\n').at(-1) ?? '').slice(0, 500);
  if (result.status !== 'Success') {
    // Missing, denied, or not what its manifest says: the data is the user's to fix, not a retry.
    if (result.exitCode === PREFETCH_EXIT.sourceMissing || result.exitCode === PREFETCH_EXIT.accessDenied || result.exitCode === PREFETCH_EXIT.manifestMismatch) {
      throw new PrecheckFailedError(message || `A data source is missing or denied (exit ${result.exitCode})`);
    }
    // A command cut short by its instance's death is an interruption, not a failed prefetch.
    await failIfInstanceGone(deps, event.instanceId, 'during the prefetch');
    throw new PrefetchFailedError(`Prefetch ${result.status}${result.exitCode === undefined ? '' : ` (exit ${result.exitCode})`}: ${message}`);
  }
  let bytes = 0;
  let seconds = 0;
  for (const line of result.stdout.split('\n')) {
    const parsed = PrefetchLineSchema.safeParse(safeJson(line));
    if (!parsed.success) continue;
    bytes += parsed.data.bytes;
    seconds += parsed.data.seconds;
  }
  logger.info('prefetch finished', { runId: event.runId, bytes, seconds });
  return { ...base, done: true, bytes, seconds };
}

function safeJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}
