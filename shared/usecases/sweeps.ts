import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { bestOf, isBetter } from '../domain/experiment';
import { specHash } from '../domain/run-identity';
import type { RunRecord } from '../domain/run-record';
import { parseRunSpec, toFieldIssues, type RunSpec } from '../domain/run-spec';
import { isTerminal } from '../domain/run-status';
import { secretRefIssues, secretsScope } from '../domain/secret-refs';
import { parseSweepSpec, trialCount, trialHyperparameters, type SweepSpec } from '../domain/sweep-spec';
import { ConflictError, NotFoundError, RunInvalidError } from '../errors';
import type { Executions } from '../ports/executions';
import type { RunStore } from '../ports/run-store';
import type { SweepRecord, Sweeps, TrialItem } from '../ports/sweeps';
import type { TrainRunInput } from './submit-run';

/**
 * Sweeps, end to end: the API accepts one and starts the sweep machine; its steps (StartSweep,
 * PrepareTrial, RecordTrial, FinishSweep) launch each trial as an ordinary train-run execution
 * within the concurrency, trial and dollar limits, and total up. docs/sweeps.md.
 */

/**
 * Above either limit the sweep machine takes its Distributed Map: an inline Map runs at most 40
 * iterations at once, and every iteration's events land in the one execution's history (25,000
 * events; a trial costs about a dozen).
 */
export const INLINE_MAP_LIMITS = { maxParallel: 40, trials: 1000 } as const;

const SubmitSweepBodySchema = z.object({
  clientToken: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_", ":" or "-"').optional(),
  spec: z.unknown().refine((v) => v !== undefined, 'is required: the sweep spec (see docs/sweeps.md)'),
});

export const SweepIdSchema = z.string().regex(/^sw-[0-9a-f]{16}$/, 'must be a sweep id like sw-0123456789abcdef');

export interface SubmitSweepDeps {
  sweeps: Sweeps;
  /** Executions of the sweep machine. */
  sweepExecutions: Executions;
  clock: () => Date;
  /** The stack's secrets prefix: the base spec's secrets are checked against the owner's path. */
  secretsPrefix?: string;
}

/** The sweep machine's input. */
export interface SweepInput {
  sweepId: string;
}

/** Validates a sweep, records it and starts its execution (named after the sweep: a retried start finds it). */
export async function submitSweep(request: { owner: string; body: unknown }, deps: SubmitSweepDeps): Promise<{ sweep: SweepRecord; created: boolean }> {
  const body = SubmitSweepBodySchema.safeParse(request.body);
  if (!body.success) {
    const issues = toFieldIssues(body.error);
    throw new RunInvalidError(`Invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  const parsed = prefixed(() => parseSweepSpec(body.data.spec));
  // Every trial would fail ValidateRun: refuse the sweep instead.
  const outside = secretRefIssues(parsed.base.secrets ?? {}, secretsScope(deps.secretsPrefix, request.owner));
  if (outside.length > 0) {
    const issues = outside.map((i) => ({ path: `spec.base.${i.path}`, message: i.message }));
    throw new RunInvalidError(`Invalid sweep spec: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  const { clientToken } = body.data;
  const sweepId = clientToken === undefined ? `sw-${randomBytes(8).toString('hex')}` : `sw-${specHash({ owner: request.owner, clientToken }).slice(0, 16)}`;
  const now = deps.clock().toISOString();
  const record: SweepRecord = {
    sweepId,
    owner: request.owner,
    spec: parsed.spec,
    experiment: parsed.spec.experiment ?? parsed.spec.name,
    status: 'PENDING',
    statusReason: 'Submitted; the sweep execution is starting',
    trials: trialCount(parsed.spec),
    launched: 0,
    finished: 0,
    skipped: 0,
    committedUsd: 0,
    costUsd: 0,
    createdAt: now,
    updatedAt: now,
  };
  let created = true;
  let current = record;
  try {
    await deps.sweeps.create(record);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    const existing = await deps.sweeps.get(sweepId);
    if (existing === undefined || existing.owner !== request.owner) throw error;
    created = false;
    current = existing;
  }
  if (current.executionArn === undefined && current.status === 'PENDING') {
    const input: SweepInput = { sweepId };
    const started = await deps.sweepExecutions.start(sweepId, input);
    current = { ...current, executionArn: started.executionArn };
  }
  return { sweep: current, created };
}

function prefixed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof RunInvalidError)) throw error;
    const issues = error.issues.map((i) => ({ path: `spec.${i.path}`, message: i.message }));
    throw new RunInvalidError(`Invalid sweep spec: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues, { cause: error });
  }
}

async function existingSweep(sweeps: Sweeps, sweepId: string): Promise<SweepRecord> {
  const sweep = await sweeps.get(sweepId);
  if (sweep === undefined) throw new NotFoundError(`Sweep ${sweepId} not found`);
  return sweep;
}

/** What StartSweep hands the Map: trial numbers only (each trial computes its own values). */
export interface SweepPlan {
  sweepId: string;
  trials: number[];
  maxParallel: number;
  distributed: boolean;
}

/** StartSweep: the sweep is RUNNING and its trials are numbered. */
export async function startSweep(event: { sweepId: string; executionArn?: string }, deps: { sweeps: Sweeps }): Promise<SweepPlan> {
  const sweep = await existingSweep(deps.sweeps, event.sweepId);
  if (sweep.status === 'PENDING') {
    await deps.sweeps.transition(sweep.sweepId, ['PENDING'], 'RUNNING', { statusReason: `Running ${sweep.trials} trial(s)`, executionArn: event.executionArn });
  }
  const distributed = sweep.spec.maxParallel > INLINE_MAP_LIMITS.maxParallel || sweep.trials > INLINE_MAP_LIMITS.trials;
  return { sweepId: sweep.sweepId, trials: Array.from({ length: sweep.trials }, (_, i) => i), maxParallel: sweep.spec.maxParallel, distributed };
}

/** The run id of trial n: the sweep's id and the trial number, so a retried launch finds the same run. */
export function trialRunId(sweepId: string, trial: number): string {
  return `${sweepId}-${String(trial).padStart(4, '0')}`;
}

/**
 * Dollars a trial holds while it runs: its own `limits.maxCostUsd` when the base spec sets one,
 * else an equal share of the budget per parallel slot. The trial's run is capped at it, so the
 * sweep can never spend more than its budget.
 */
export function trialHoldUsd(spec: Pick<SweepSpec, 'maxCostUsd' | 'maxParallel'>, base: RunSpec): number {
  if (spec.maxCostUsd === undefined) return base.limits.maxCostUsd ?? 0;
  return Math.min(base.limits.maxCostUsd ?? Number.POSITIVE_INFINITY, spec.maxCostUsd / spec.maxParallel);
}

export type PreparedTrial =
  | { action: 'launch'; runId: string; input: TrainRunInput }
  | { action: 'skip'; runId: string; reason: string };

/** PrepareTrial: holds the trial's share of the budget, records its run (PENDING) and answers the train-run input. */
export async function prepareTrial(
  event: { sweepId: string; trial: number },
  deps: { sweeps: Sweeps; store: RunStore; clock: () => Date },
): Promise<PreparedTrial> {
  const sweep = await existingSweep(deps.sweeps, event.sweepId);
  const base = parseRunSpec(sweep.spec.base);
  const runId = trialRunId(sweep.sweepId, event.trial);
  const hyperparameters = trialHyperparameters(sweep.spec, event.trial);
  const reservedUsd = trialHoldUsd(sweep.spec, base);
  const reservation = await deps.sweeps.reserveTrial({ sweepId: sweep.sweepId, trial: event.trial, runId, hyperparameters, reservedUsd }, sweep.spec.maxCostUsd);
  if (reservation.outcome === 'skip') return { action: 'skip', runId, reason: reservation.reason };

  const spec = parseRunSpec({
    ...base,
    name: `${sweep.spec.name}-${String(event.trial).padStart(4, '0')}`.slice(0, 63),
    experiment: sweep.experiment,
    hyperparameters: { ...base.hyperparameters, ...hyperparameters },
    limits: { ...base.limits, ...(sweep.spec.maxCostUsd === undefined ? {} : { maxCostUsd: reservedUsd }) },
  });
  const now = deps.clock().toISOString();
  const record: RunRecord = {
    runId,
    owner: sweep.owner,
    spec,
    specHash: specHash(spec),
    status: 'PENDING',
    statusReason: `Trial ${event.trial} of sweep ${sweep.sweepId}; the execution is starting`,
    createdAt: now,
    updatedAt: now,
    attempts: [],
    costUsd: 0,
    interruptions: 0,
    userFailures: 0,
    sweep: { sweepId: sweep.sweepId, trial: event.trial },
  };
  try {
    await deps.store.create(record);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error; // a retry: the run is there already
  }
  return { action: 'launch', runId, input: { runId, owner: sweep.owner, spec } };
}

/** RecordTrial: how the trial's run ended, its cost and best objective, onto the sweep. */
export async function recordTrial(
  event: { sweepId: string; trial: number },
  deps: { sweeps: Sweeps; store: RunStore },
): Promise<{ runId: string; status: string; best: number | null }> {
  const sweep = await existingSweep(deps.sweeps, event.sweepId);
  const runId = trialRunId(sweep.sweepId, event.trial);
  const run = await deps.store.get(runId);
  const status = run?.status ?? 'FAILED_CONTROLLER';
  const best = bestOf(run?.metrics, sweep.spec.objective);
  await deps.sweeps.recordTrial(sweep.sweepId, event.trial, { costUsd: run?.costUsd ?? 0, runStatus: status, best });
  return { runId, status, best: best ?? null };
}

/** Every trial item of a sweep. */
export async function allTrials(sweeps: Sweeps, sweepId: string): Promise<TrialItem[]> {
  const trials: TrialItem[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sweeps.listTrials(sweepId, { limit: 100, nextToken });
    trials.push(...page.items);
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  return trials;
}

/** FinishSweep: the sweep's cost is the sum of its trials'; the best trial is named; the status is final. */
export async function finishSweep(
  event: { sweepId: string; error?: { Error: string; Cause?: string } },
  deps: { sweeps: Sweeps },
): Promise<{ status: string; costUsd: number; best: SweepRecord['best'] | null }> {
  const sweep = await existingSweep(deps.sweeps, event.sweepId);
  const trials = await allTrials(deps.sweeps, sweep.sweepId);
  const costUsd = trials.reduce((sum, t) => sum + (t.costUsd ?? 0), 0);
  let best: SweepRecord['best'];
  for (const t of trials) {
    if (t.best === undefined) continue;
    if (best === undefined || isBetter(t.best, best.value, sweep.spec.objective.goal)) best = { runId: t.runId, trial: t.trial, value: t.best };
  }
  if (sweep.status === 'SUCCEEDED' || sweep.status === 'STOPPED' || sweep.status === 'FAILED') {
    return { status: sweep.status, costUsd: sweep.costUsd, best: sweep.best ?? null };
  }
  const ran = trials.filter((t) => t.state === 'RECORDED').length;
  const skipped = trials.filter((t) => t.state === 'SKIPPED').length;
  const summary = `${ran} trial(s) ran, ${skipped} skipped; cost $${costUsd.toFixed(2)}${best === undefined ? '' : `; best ${sweep.spec.objective.metric} ${best.value} (${best.runId})`}`;
  const to = event.error !== undefined ? 'FAILED' : sweep.status === 'STOPPING' ? 'STOPPED' : 'SUCCEEDED';
  const reason = event.error !== undefined ? `${event.error.Error}: ${event.error.Cause ?? ''}; ${summary}` : summary;
  await deps.sweeps.transition(sweep.sweepId, ['PENDING', 'RUNNING', 'STOPPING'], to, { statusReason: reason, costUsd, best });
  return { status: to, costUsd, best: best ?? null };
}

/** The live runs of a sweep's launched trials. */
export async function liveTrialRuns(deps: { sweeps: Sweeps; store: RunStore }, sweepId: string): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  for (const trial of await allTrials(deps.sweeps, sweepId)) {
    if (trial.state !== 'LAUNCHED') continue;
    const run = await deps.store.get(trial.runId);
    if (run !== undefined && !isTerminal(run.status)) runs.push(run);
  }
  return runs;
}
