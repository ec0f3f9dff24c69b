import { z } from 'zod';
import { medianStoppingDecisions, progressPoints, type StopDecision, type TrialProgress } from '../domain/early-stopping';
import { metricValueText } from '../domain/experiment';
import { isTerminal } from '../domain/run-status';
import { toFieldIssues } from '../domain/run-spec';
import { ConflictError, NotFoundError, RunInvalidError, StatusConflictError } from '../errors';
import type { Artifacts } from '../ports/artifacts';
import type { SweepRecord, Sweeps, TrialItem } from '../ports/sweeps';
import { stopRun, type CancelRunDeps } from './cancel-run';
import { allTrials, liveTrialRuns, SweepIdSchema } from './sweeps';

/** What the sweep routes and the early-stopping schedule act on besides the sweeps: the runs, and how to stop one. */
export type SweepControlDeps = CancelRunDeps & { sweeps: Sweeps };

/** A sweep of the caller's; another owner's is not found. */
export async function getOwnedSweep(request: { owner: string; sweepId: string }, deps: { sweeps: Sweeps }): Promise<SweepRecord> {
  const id = SweepIdSchema.safeParse(request.sweepId);
  const sweep = id.success ? await deps.sweeps.get(id.data) : undefined;
  if (sweep === undefined || sweep.owner !== request.owner) throw new NotFoundError(`Sweep ${request.sweepId} not found`);
  return sweep;
}

const TrialsQuerySchema = z.object({
  limit: z.coerce.number().int('must be a whole number').min(1, 'must be between 1 and 100').max(100, 'must be between 1 and 100').default(100),
  nextToken: z.string().min(1).optional(),
});

/** `GET /sweeps/{id}`: the sweep and a page of its trials. */
export async function describeSweep(
  request: { owner: string; sweepId: string; query: unknown },
  deps: { sweeps: Sweeps },
): Promise<{ sweep: SweepRecord; trials: TrialItem[]; nextToken?: string }> {
  const parsed = TrialsQuerySchema.safeParse(request.query ?? {});
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error);
    throw new RunInvalidError(`Invalid query: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  const sweep = await getOwnedSweep(request, deps);
  const page = await deps.sweeps.listTrials(sweep.sweepId, parsed.data);
  return { sweep, trials: page.items, nextToken: page.nextToken };
}

/**
 * `POST /sweeps/{id}/stop`: no trial is launched any more (PrepareTrial skips once the sweep is
 * STOPPING), and each running trial is stopped the way a cancel stops a run (checkpoint, then
 * release), so the Map ends as its trials do and FinishSweep writes STOPPED.
 */
export async function stopSweep(request: { owner: string; sweepId: string }, deps: SweepControlDeps): Promise<SweepRecord> {
  const sweep = await getOwnedSweep(request, deps);
  let stopping = sweep;
  if (sweep.status === 'PENDING' || sweep.status === 'RUNNING') {
    stopping = await deps.sweeps.transition(sweep.sweepId, ['PENDING', 'RUNNING'], 'STOPPING', { statusReason: 'Stop requested: stopping the running trials' });
  } else if (sweep.status !== 'STOPPING') {
    throw new ConflictError(`Sweep ${sweep.sweepId} already ended with status ${sweep.status}; nothing to stop`);
  }
  for (const run of await liveTrialRuns(deps, sweep.sweepId)) {
    await stopQuietly(() => stopRun(run, { force: false, reason: `Sweep ${sweep.sweepId} was stopped: checkpointing, then releasing` }, deps));
  }
  return stopping;
}

/** A run that ended between the read and the stop needs no stopping. */
async function stopQuietly(stop: () => Promise<unknown>): Promise<void> {
  try {
    await stop();
  } catch (error) {
    if (!(error instanceof ConflictError) && !(error instanceof StatusConflictError)) throw error;
  }
}

/**
 * The early-stopping schedule: for every RUNNING sweep with a rule, reads its trials' metrics and
 * stops (checkpoint kept) each live trial the rule condemns; FinishRun then records STOPPED_EARLY.
 * It runs on an EventBridge schedule rather than inside the sweep machine, so a week-long sweep
 * costs no state transitions for it.
 */
export async function evaluateSweeps(deps: SweepControlDeps & { artifacts: Pick<Artifacts, 'readMetrics'> }): Promise<StopDecision[]> {
  const stopped: StopDecision[] = [];
  let nextToken: string | undefined;
  do {
    const page = await deps.sweeps.listByStatus('RUNNING', { limit: 100, nextToken });
    for (const sweep of page.items) stopped.push(...(await evaluateSweep(sweep, deps)));
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  return stopped;
}

async function evaluateSweep(sweep: SweepRecord, deps: SweepControlDeps & { artifacts: Pick<Artifacts, 'readMetrics'> }): Promise<StopDecision[]> {
  const rule = sweep.spec.earlyStopping;
  if (rule === undefined) return [];
  const { metric, goal } = sweep.spec.objective;
  const progress: TrialProgress[] = [];
  const runs = new Map<string, Awaited<ReturnType<typeof deps.store.get>>>();
  for (const trial of await allTrials(deps.sweeps, sweep.sweepId)) {
    if (trial.state === 'SKIPPED') continue;
    const run = await deps.store.get(trial.runId);
    if (run === undefined) continue;
    runs.set(run.runId, run);
    const points = progressPoints(await deps.artifacts.readMetrics(run.runId), rule.stepKey, metric);
    progress.push({ runId: run.runId, live: run.status === 'TRAINING', points });
  }
  const decisions = medianStoppingDecisions(progress, rule, goal);
  for (const decision of decisions) {
    const run = runs.get(decision.runId);
    if (run === undefined || isTerminal(run.status)) continue;
    const reason =
      `Stopped early by the median rule of sweep ${sweep.sweepId}: best ${metric} ${metricValueText(decision.best)} by ${rule.stepKey} ` +
      `${decision.step}, median of ${decision.others} other trial(s) ${metricValueText(decision.median)}; checkpointing, then releasing`;
    await stopQuietly(() => stopRun(run, { force: false, reason, earlyStop: true }, deps));
  }
  return decisions;
}
