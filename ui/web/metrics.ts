import type { MetricPoint } from './types';

/**
 * Metric lines → chart columns. Each attempt is its own series, so a resumed attempt that
 * re-trains steps the interrupted one had reached shows as an overlap, not a zig-zag; the
 * x values of all attempts are merged and sorted, as uPlot wants one ascending x array.
 */

/** Keys of a metrics line that are not metrics. */
const BOOKKEEPING = new Set(['ts', 'attempt', 'step', 'epoch']);

/** The x axis: step when the script reports steps, else epoch, else the line number. */
export function xAxisOf(points: readonly MetricPoint[]): 'step' | 'epoch' | 'line' {
  if (points.some((p) => typeof p.step === 'number')) return 'step';
  if (points.some((p) => typeof p.epoch === 'number')) return 'epoch';
  return 'line';
}

/** Numeric metrics, in the order they first appear. */
export function metricNames(points: readonly MetricPoint[]): string[] {
  const names = new Set<string>();
  for (const point of points) for (const [key, value] of Object.entries(point)) if (!BOOKKEEPING.has(key) && typeof value === 'number' && Number.isFinite(value)) names.add(key);
  return [...names];
}

export interface ChartData {
  xs: number[];
  /** attempt → y per x (null where the attempt has no point there). */
  series: Array<{ attempt: number; ys: Array<number | null> }>;
  /** x where each attempt after the first starts: the resume points. */
  resumes: Array<{ attempt: number; x: number }>;
  points: number;
}

export function chartData(points: readonly MetricPoint[], metric: string, axis: 'step' | 'epoch' | 'line'): ChartData {
  const byAttempt = new Map<number, Map<number, number>>();
  const xSet = new Set<number>();
  let count = 0;
  points.forEach((point, index) => {
    const y = point[metric];
    const x = axis === 'line' ? index : point[axis];
    if (typeof y !== 'number' || !Number.isFinite(y) || typeof x !== 'number' || !Number.isFinite(x)) return;
    const attempt = typeof point.attempt === 'number' ? point.attempt : 1;
    let values = byAttempt.get(attempt);
    if (values === undefined) byAttempt.set(attempt, (values = new Map()));
    values.set(x, y);
    xSet.add(x);
    count += 1;
  });
  const xs = [...xSet].sort((a, b) => a - b);
  const attempts = [...byAttempt.keys()].sort((a, b) => a - b);
  const series = attempts.map((attempt) => {
    const values = byAttempt.get(attempt) ?? new Map<number, number>();
    return { attempt, ys: xs.map((x) => values.get(x) ?? null) };
  });
  const resumes = attempts.slice(1).flatMap((attempt) => {
    const first = Math.min(...(byAttempt.get(attempt)?.keys() ?? []));
    return Number.isFinite(first) ? [{ attempt, x: first }] : [];
  });
  return { xs, series, resumes, points: count };
}
