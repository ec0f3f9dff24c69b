import { z } from 'zod';

/**
 * Experiments: every run belongs to one, named by `spec.experiment`, else (for a sweep's
 * trials) the sweep's experiment, else the run's own name. An experiment is what `runctl
 * compare` lays side by side: hyperparameters against the final and best value of each metric.
 */

/** An experiment name has the shape of a run name: it is one when nothing else is given. */
export const ExperimentNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit');

/** The experiment a run belongs to. */
export function experimentOf(spec: { name: string; experiment?: string | undefined }): string {
  return spec.experiment ?? spec.name;
}

/** A metric name as the agent reports it (a JSON key or a metric definition's name). */
export const MetricNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.:/-]{0,63}$/, 'must be a metric name like loss or val/acc');

/** What a sweep optimises and which way. */
export const ObjectiveSchema = z.strictObject({
  metric: MetricNameSchema,
  goal: z.enum(['minimize', 'maximize'], { error: 'must be "minimize" or "maximize"' }).default('minimize'),
});
export type Objective = z.infer<typeof ObjectiveSchema>;

/**
 * A run's metrics in brief, written on its record when it ends: the last value of each metric
 * and its smallest and largest, so `compare` reads one item per run instead of every run's
 * metrics file.
 */
export const MetricsSummarySchema = z.object({
  final: z.record(z.string(), z.number()),
  min: z.record(z.string(), z.number()),
  max: z.record(z.string(), z.number()),
  /** Metric lines seen. */
  points: z.number().int().min(0),
});
export type MetricsSummary = z.infer<typeof MetricsSummarySchema>;

/** Keys of a metrics line that are bookkeeping, not metrics. */
const NOT_METRICS: ReadonlySet<string> = new Set(['ts', 'attempt']);

/** Folds metrics lines (`{ts, attempt, loss: 0.3, …}`, oldest first) into their summary; undefined when there are none. */
export function summarizeMetrics(lines: Iterable<Record<string, unknown>>): MetricsSummary | undefined {
  const summary: MetricsSummary = { final: {}, min: {}, max: {}, points: 0 };
  for (const line of lines) {
    let counted = false;
    for (const [name, value] of Object.entries(line)) {
      if (NOT_METRICS.has(name) || typeof value !== 'number' || !Number.isFinite(value)) continue;
      summary.final[name] = value;
      summary.min[name] = Math.min(summary.min[name] ?? value, value);
      summary.max[name] = Math.max(summary.max[name] ?? value, value);
      counted = true;
    }
    if (counted) summary.points += 1;
  }
  return summary.points === 0 ? undefined : summary;
}

/** The best value of the objective's metric that a run reached, if it reported it. */
export function bestOf(summary: MetricsSummary | undefined, objective: Objective): number | undefined {
  const side = objective.goal === 'minimize' ? summary?.min : summary?.max;
  return side?.[objective.metric];
}

/** Whether `a` is better than `b` for the objective. */
export function isBetter(a: number, b: number, goal: Objective['goal']): boolean {
  return goal === 'minimize' ? a < b : a > b;
}

/** Rows sorted best first by `value`; rows without a value keep their order, last. */
export function sortByObjective<T>(rows: readonly T[], value: (row: T) => number | undefined, goal: Objective['goal']): T[] {
  const scored = rows.map((row, index) => ({ row, index, score: value(row) }));
  scored.sort((a, b) => {
    if (a.score === undefined || b.score === undefined) {
      return a.score === undefined && b.score === undefined ? a.index - b.index : a.score === undefined ? 1 : -1;
    }
    if (a.score === b.score) return a.index - b.index;
    return isBetter(a.score, b.score, goal) ? -1 : 1;
  });
  return scored.map((s) => s.row);
}

/** A metric value as people read it: four significant digits. */
export function metricValueText(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}
