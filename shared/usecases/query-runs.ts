import { z } from 'zod';
import { NotFoundError, RunInvalidError } from '../errors';
import { interruptionTimelines, type InterruptionTimeline } from '../domain/interruption';
import { summarize, type RunRecord, type RunSummary } from '../domain/run-record';
import { RUN_STATUSES } from '../domain/run-status';
import { toFieldIssues } from '../domain/run-spec';
import type { RunStore } from '../ports/run-store';

export const ListRunsQuerySchema = z.object({
  status: z.enum(RUN_STATUSES, { error: `must be one of ${RUN_STATUSES.join(', ')}` }).optional(),
  limit: z.coerce.number().int().min(1, 'must be between 1 and 100').max(100, 'must be between 1 and 100').default(25),
  nextToken: z.string().min(1).optional(),
});

/**
 * What a caller may see of a run: everything but the live task tokens, plus the timeline and
 * wall-time overhead of each spot interruption (docs/recovery.md).
 */
export type RunView = Omit<RunRecord, 'taskToken' | 'replacementToken'> & { interruptionTimeline: InterruptionTimeline[] };

/** Strips what must never leave the control plane. */
export function toView(record: RunRecord): RunView {
  const { taskToken: _hidden, replacementToken: _hiddenToo, ...view } = record;
  return { ...view, interruptionTimeline: interruptionTimelines(record.attempts) };
}

/** The caller's runs, newest first. */
export async function listRuns(
  request: { owner: string; query: unknown },
  deps: { store: RunStore },
): Promise<{ runs: RunSummary[]; nextToken?: string }> {
  const parsed = ListRunsQuerySchema.safeParse(request.query ?? {});
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error);
    throw new RunInvalidError(`Invalid query: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  const page = await deps.store.listByOwner(request.owner, parsed.data);
  return { runs: page.items.map(summarize), nextToken: page.nextToken };
}

/** One run of the caller's; another owner's run is reported as not found, never as forbidden. */
export async function getOwnedRun(request: { owner: string; runId: string }, deps: { store: RunStore }): Promise<RunRecord> {
  const record = /^[A-Za-z0-9_-]{1,80}$/.test(request.runId) ? await deps.store.get(request.runId) : undefined;
  if (record === undefined || record.owner !== request.owner) {
    throw new NotFoundError(`Run ${request.runId} not found`);
  }
  return record;
}
