import { printJson, type CommandContext } from '../context';
import { UsageError } from '../errors';
import { metricValue, shortTime, table, usd } from '../render';
import { ExperimentRunsPageSchema, ExperimentsPageSchema, type Experiment, type ExperimentRun } from '../research-types';

/** `runctl experiments ls`: the caller's experiments. */
export async function listExperiments(context: CommandContext): Promise<number> {
  const experiments: Experiment[] = [];
  let nextToken: string | undefined;
  do {
    const page = await context.client.call('GET', '/experiments', ExperimentsPageSchema, { query: { nextToken } });
    experiments.push(...page.experiments);
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  if (context.json) {
    printJson(context, { experiments });
    return 0;
  }
  if (experiments.length === 0) {
    context.out('No experiments yet: every run belongs to one (spec.experiment, its sweep, else its name).');
    return 0;
  }
  context.out(
    table(
      ['EXPERIMENT', 'RUNS', 'OBJECTIVE', 'CREATED', 'LAST RUN'],
      experiments.map((e) => [
        e.name,
        String(e.runs),
        e.objective === undefined ? '-' : `${e.objective.goal} ${e.objective.metric}`,
        shortTime(e.createdAt),
        shortTime(e.updatedAt),
      ]),
    ),
  );
  return 0;
}

export interface CompareOptions {
  /** The metric to sort by; default: the experiment's objective, else `loss`, else the first metric. */
  metric?: string;
  maximize?: boolean;
  csv?: boolean;
}

/** One run of the comparison, with the value it is ranked by. */
export interface ComparedRun extends ExperimentRun {
  best?: number;
}

export interface Comparison {
  experiment: string;
  objective: { metric: string; goal: 'minimize' | 'maximize' };
  hyperparameters: string[];
  metrics: string[];
  runs: ComparedRun[];
  /** API pages read to gather the runs. */
  pages: number;
}

/** Reads every run of an experiment and ranks them by the objective, best first (runs without it last). */
export async function gatherComparison(context: CommandContext, name: string, options: CompareOptions): Promise<Comparison> {
  const runs: ExperimentRun[] = [];
  let experiment: Experiment | undefined;
  let nextToken: string | undefined;
  let pages = 0;
  do {
    const page = await context.client.call('GET', `/experiments/${encodeURIComponent(name)}/runs`, ExperimentRunsPageSchema, {
      query: { limit: 100, nextToken },
    });
    pages += 1;
    experiment = page.experiment;
    runs.push(...page.runs);
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  return rankRuns(name, runs, pages, { ...options, fallback: experiment?.objective });
}

/** Ranks runs by the objective (pure: what `compare` prints, from what the API returned). */
export function rankRuns(
  experiment: string,
  runs: readonly ExperimentRun[],
  pages: number,
  options: CompareOptions & { fallback?: { metric: string; goal: 'minimize' | 'maximize' } },
): Comparison {
  const metrics = [...new Set(runs.flatMap((r) => Object.keys(r.metrics?.final ?? {})))].sort();
  const hyperparameters = [...new Set(runs.flatMap((r) => Object.keys(r.hyperparameters)))];
  const metric = options.metric ?? options.fallback?.metric ?? (metrics.includes('loss') ? 'loss' : metrics[0] ?? 'loss');
  const goal = options.maximize === true ? 'maximize' : options.metric === undefined && options.fallback !== undefined ? options.fallback.goal : 'minimize';
  const scored: ComparedRun[] = runs.map((r) => ({ ...r, best: (goal === 'minimize' ? r.metrics?.min : r.metrics?.max)?.[metric] }));
  const ranked = scored
    .map((run, index) => ({ run, index }))
    .sort((a, b) => {
      const [x, y] = [a.run.best, b.run.best];
      if (x === undefined || y === undefined) return x === y ? a.index - b.index : x === undefined ? 1 : -1;
      if (x === y) return a.index - b.index;
      return (goal === 'minimize' ? x < y : x > y) ? -1 : 1;
    })
    .map((s) => s.run);
  const ordered = [metric, ...metrics.filter((m) => m !== metric)];
  return { experiment, objective: { metric, goal }, hyperparameters, metrics: ordered, runs: ranked, pages };
}

/** `best loss` on a bar per run: how far each run got, to the eye. */
export function objectiveBars(comparison: Comparison, width = 40): string {
  const values = comparison.runs.flatMap((r) => (r.best === undefined ? [] : [r.best]));
  if (values.length === 0) return `(no run reported ${comparison.objective.metric})`;
  const [low, high] = [Math.min(...values), Math.max(...values)];
  const label = Math.max(...comparison.runs.map((r) => r.runId.length));
  const lines = comparison.runs.map((r) => {
    if (r.best === undefined) return `${r.runId.padEnd(label)}  ${'·'.padEnd(width)}  -`;
    // Longer is better whichever way the objective goes; the worst run still gets one mark.
    const fraction = high === low ? 1 : comparison.objective.goal === 'minimize' ? (high - r.best) / (high - low) : (r.best - low) / (high - low);
    const length = Math.max(1, Math.round(fraction * width));
    return `${r.runId.padEnd(label)}  ${'#'.repeat(length).padEnd(width)}  ${metricValue(r.best)}`;
  });
  return [`best ${comparison.objective.metric} per run (${comparison.objective.goal}; longer is better)`, ...lines].join('\n');
}

function headersOf(comparison: Comparison): string[] {
  return [
    'RUN',
    'STATUS',
    ...comparison.hyperparameters,
    `best ${comparison.objective.metric}`,
    ...comparison.metrics.map((m) => `final ${m}`),
    'COST',
  ];
}

function rows(comparison: Comparison): { headers: string[]; cells: string[][] } {
  const headers = headersOf(comparison);
  const cells = comparison.runs.map((r) => [
    r.runId,
    r.status,
    ...comparison.hyperparameters.map((h) => r.hyperparameters[h] ?? ''),
    r.best === undefined ? '-' : metricValue(r.best),
    ...comparison.metrics.map((m) => metricValue(r.metrics?.final[m]) || '-'),
    usd(r.costUsd),
  ]);
  return { headers, cells };
}

function csvCell(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** The comparison as CSV: one header line, one line per run, best first. */
export function comparisonCsv(comparison: Comparison): string {
  const raw = comparison.runs.map((r) => [
    r.runId,
    r.status,
    ...comparison.hyperparameters.map((h) => r.hyperparameters[h] ?? ''),
    r.best === undefined ? '' : String(r.best),
    ...comparison.metrics.map((m) => (r.metrics?.final[m] === undefined ? '' : String(r.metrics.final[m]))),
    r.costUsd.toFixed(4),
  ]);
  return [headersOf(comparison), ...raw].map((line) => line.map(csvCell).join(',')).join('\n');
}

/** `runctl compare EXP`: hyperparameters × final and best metrics, best run first, and a plot of the objective. */
export async function compare(context: CommandContext, name: string | undefined, options: CompareOptions): Promise<number> {
  if (name === undefined) throw new UsageError('runctl compare needs an experiment name (see runctl experiments ls)');
  if (context.json && options.csv === true) throw new UsageError('Choose --json or --csv, not both');
  const comparison = await gatherComparison(context, name, options);
  if (context.json) {
    printJson(context, comparison);
    return 0;
  }
  if (options.csv === true) {
    context.out(comparisonCsv(comparison));
    return 0;
  }
  const { headers, cells } = rows(comparison);
  context.out(`Experiment ${comparison.experiment}: ${comparison.runs.length} run(s), sorted by ${comparison.objective.goal === 'minimize' ? 'lowest' : 'highest'} ${comparison.objective.metric}`);
  context.out(table(headers, cells));
  context.out('');
  context.out(objectiveBars(comparison));
  return 0;
}
