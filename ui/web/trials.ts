import type { ExperimentRun, Objective, Trial } from './research-types';

/**
 * Trials as the experiment and sweep pages lay them out: one row per run (or skipped trial),
 * ranked by the objective. Pure functions, so the pages stay drawing code.
 */

export interface TrialRow {
  /** Trial number in its sweep, else the run's place in its experiment (1 = oldest). */
  index: number;
  runId: string;
  /** The run's name; undefined for a trial that never had a run (skipped). */
  name?: string;
  status: string;
  reason?: string;
  hyperparameters: Record<string, string>;
  /** Best value of the objective's metric the run reached. */
  best?: number;
  /** Last value of the objective's metric. */
  final?: number;
  costUsd: number;
  sweepId?: string;
}

/** The value a run is ranked by: its smallest (minimize) or largest (maximize) value of the metric. */
export function bestValue(run: Pick<ExperimentRun, 'metrics'>, objective: Objective): number | undefined {
  return (objective.goal === 'minimize' ? run.metrics?.min : run.metrics?.max)?.[objective.metric];
}

/** Whether `a` is better than `b`. */
export function better(a: number, b: number, goal: Objective['goal']): boolean {
  return goal === 'minimize' ? a < b : a > b;
}

/** Rows best first; rows without a value keep their order, last. */
export function rankRows(rows: readonly TrialRow[], goal: Objective['goal']): TrialRow[] {
  return rows
    .map((row, position) => ({ row, position }))
    .sort((a, b) => {
      const [x, y] = [a.row.best, b.row.best];
      if (x === undefined || y === undefined) return x === y ? a.position - b.position : x === undefined ? 1 : -1;
      if (x === y) return a.position - b.position;
      return better(x, y, goal) ? -1 : 1;
    })
    .map((r) => r.row);
}

/** Every metric the runs reported, `loss` first when there is one. */
export function metricsOf(runs: readonly ExperimentRun[]): string[] {
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.metrics?.final ?? {})))].sort();
  return names.includes('loss') ? ['loss', ...names.filter((n) => n !== 'loss')] : names;
}

/** The experiment's objective: its sweep's when it has one, else `loss` minimised, else the first metric. */
export function defaultObjective(runs: readonly ExperimentRun[], sweepObjective: Objective | undefined): Objective {
  if (sweepObjective !== undefined) return sweepObjective;
  return { metric: metricsOf(runs)[0] ?? 'loss', goal: 'minimize' };
}

/** An experiment's runs as rows, numbered oldest first, or by trial number when they are one sweep's trials. */
export function experimentRows(runs: readonly ExperimentRun[], objective: Objective, byTrial: boolean): TrialRow[] {
  return runs.map((run, i) => ({
    index: byTrial && run.sweep !== undefined ? run.sweep.trial : i + 1,
    runId: run.runId,
    name: run.name,
    status: run.status,
    reason: run.statusReason,
    hyperparameters: run.hyperparameters,
    best: bestValue(run, objective),
    final: run.metrics?.final[objective.metric],
    costUsd: run.costUsd,
    sweepId: run.sweep?.sweepId,
  }));
}

/**
 * A sweep's trials as rows. The trial item says how the trial was launched or skipped and, once
 * recorded, how it ended; the run (when the experiment listing has it) says where it is now.
 */
export function sweepRows(trials: readonly Trial[], runs: ReadonlyMap<string, ExperimentRun>, objective: Objective): TrialRow[] {
  return trials.map((trial) => {
    const run = runs.get(trial.runId);
    const status = trial.state === 'SKIPPED' ? 'SKIPPED' : (run?.status ?? trial.runStatus ?? 'PENDING');
    return {
      index: trial.trial,
      runId: trial.runId,
      name: run?.name,
      status,
      reason: trial.reason ?? run?.statusReason,
      hyperparameters: trial.hyperparameters,
      best: trial.best ?? (run === undefined ? undefined : bestValue(run, objective)),
      final: run?.metrics?.final[objective.metric],
      costUsd: run?.costUsd ?? trial.costUsd ?? 0,
      sweepId: trial.sweepId,
    };
  });
}

/**
 * How a hyperparameter is drawn: a few values (a grid axis, a choice) as categories in their
 * order; many numbers (random draws) on a number line, log when they span two decades or more.
 */
export type Axis = { kind: 'linear' | 'log'; min: number; max: number } | { kind: 'category'; values: string[] };

/** Distinct values above which numbers are drawn on a number line rather than as categories. */
const MAX_CATEGORIES = 6;

export function axisOf(values: readonly string[]): Axis {
  const distinct = [...new Set(values)];
  const numbers = distinct.map((v) => (v.trim() === '' ? Number.NaN : Number(v)));
  const numeric = numbers.every(Number.isFinite);
  if (numeric && distinct.length > MAX_CATEGORIES) {
    const min = Math.min(...numbers);
    const max = Math.max(...numbers);
    return { kind: min > 0 && max / min >= 100 ? 'log' : 'linear', min, max };
  }
  return { kind: 'category', values: numeric ? distinct.sort((a, b) => Number(a) - Number(b)) : distinct.sort() };
}

/** Hyperparameters that differ between the rows (the ones worth plotting), in first-seen order. */
export function varyingHyperparameters(rows: readonly TrialRow[]): string[] {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.hyperparameters)))];
  return keys.filter((k) => new Set(rows.map((r) => r.hyperparameters[k] ?? '')).size > 1);
}

/** Round tick values across [min, max]: 1, 2 or 5 times a power of ten apart. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/** A metric value as people read it: four significant digits. */
export function valueText(value: number | undefined): string {
  if (value === undefined) return '—';
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}
