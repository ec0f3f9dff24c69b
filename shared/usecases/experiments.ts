import { z } from 'zod';
import { ExperimentNameSchema, type MetricsSummary } from '../domain/experiment';
import type { RunRecord } from '../domain/run-record';
import type { RunStatus } from '../domain/run-status';
import { toFieldIssues } from '../domain/run-spec';
import type { Hyperparameters } from '../domain/hyperparameters';
import { NotFoundError, RunInvalidError } from '../errors';
import type { ExperimentView, Experiments } from '../ports/experiments';
import type { RunStore } from '../ports/run-store';

/** `GET /experiments` and `GET /experiments/{name}/runs`: the listings behind `runctl experiments ls` and `runctl compare`. */

export const PageQuerySchema = z.object({
  limit: z.coerce.number().int('must be a whole number').min(1, 'must be between 1 and 100').max(100, 'must be between 1 and 100').default(100),
  nextToken: z.string().min(1).optional(),
});

/** One run as `compare` lays it out: what went in and what came out. */
export interface ExperimentRun {
  runId: string;
  name: string;
  status: RunStatus;
  /** Why the run is in its status (a stopped-early trial's numbers, a failure's cause). */
  statusReason?: string;
  createdAt: string;
  costUsd: number;
  hyperparameters: Hyperparameters;
  metrics?: MetricsSummary;
  sweep?: { sweepId: string; trial: number };
}

export interface ExperimentRunsPage {
  experiment: ExperimentView;
  runs: ExperimentRun[];
  nextToken?: string;
}

export interface ExperimentDeps {
  store: RunStore;
  experiments: Experiments;
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issues = toFieldIssues(parsed.error);
  throw new RunInvalidError(`Invalid query: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

/** Projects a run record onto its row in an experiment. */
export function toExperimentRun(record: RunRecord): ExperimentRun {
  return {
    runId: record.runId,
    name: record.spec.name,
    status: record.status,
    statusReason: record.statusReason,
    createdAt: record.createdAt,
    costUsd: record.costUsd,
    hyperparameters: record.spec.hyperparameters,
    metrics: record.metrics,
    sweep: record.sweep,
  };
}

/** The caller's experiments, by name, one page at a time. */
export async function listExperiments(
  request: { owner: string; query: unknown },
  deps: Pick<ExperimentDeps, 'experiments'>,
): Promise<{ experiments: ExperimentView[]; nextToken?: string }> {
  const query = parse(PageQuerySchema, request.query);
  const page = await deps.experiments.list(request.owner, query);
  return { experiments: page.items, nextToken: page.nextToken };
}

/** The runs of one experiment of the caller's, oldest first; another owner's experiment is not found. */
export async function listExperimentRuns(
  request: { owner: string; name: string; query: unknown },
  deps: ExperimentDeps,
): Promise<ExperimentRunsPage> {
  const name = ExperimentNameSchema.safeParse(request.name);
  const experiment = name.success ? await deps.experiments.get(request.owner, name.data) : undefined;
  if (experiment === undefined) throw new NotFoundError(`Experiment ${request.name} not found`);
  const query = parse(PageQuerySchema, request.query);
  const page = await deps.store.listByExperiment(request.owner, experiment.name, query);
  return { experiment, runs: page.items.map(toExperimentRun), nextToken: page.nextToken };
}
