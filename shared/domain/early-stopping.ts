import { isBetter, type Objective } from './experiment';
import type { EarlyStopping } from './sweep-spec';

/**
 * The median stopping rule (Golovin et al., "Google Vizier", 2017): a live trial whose best
 * objective by step s is worse than the median of the other trials' running averages up to s
 * is stopped. The averages (not the others' bests) keep the rule lenient: with four similar
 * trials it does not stop whichever happens to be third. Pure: the caller reads the trials'
 * metrics and acts on the decisions.
 */

/** One trial as the rule sees it: its objective at each reported step. */
export interface TrialProgress {
  runId: string;
  /** Still training (only live trials can be stopped; ended ones still count for the median). */
  live: boolean;
  points: ReadonlyArray<{ step: number; value: number }>;
}

export interface StopDecision {
  runId: string;
  step: number;
  best: number;
  median: number;
  /** Other trials the median was taken over. */
  others: number;
}

/** The objective at each step of a run's metrics lines (lines that carry both the step key and the metric). */
export function progressPoints(lines: Iterable<Record<string, unknown>>, stepKey: string, metric: string): Array<{ step: number; value: number }> {
  const points: Array<{ step: number; value: number }> = [];
  for (const line of lines) {
    const step = line[stepKey];
    const value = line[metric];
    if (typeof step === 'number' && typeof value === 'number' && Number.isFinite(step) && Number.isFinite(value)) points.push({ step, value });
  }
  return points;
}

function bestBy(points: TrialProgress['points'], step: number, goal: Objective['goal']): number | undefined {
  let best: number | undefined;
  for (const p of points) {
    if (p.step <= step && (best === undefined || isBetter(p.value, best, goal))) best = p.value;
  }
  return best;
}

function averageBy(points: TrialProgress['points'], step: number): number | undefined {
  const upTo = points.filter((p) => p.step <= step);
  return upTo.length === 0 ? undefined : upTo.reduce((sum, p) => sum + p.value, 0) / upTo.length;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The live trials the rule stops now, with the numbers that condemned each. */
export function medianStoppingDecisions(
  trials: readonly TrialProgress[],
  rule: EarlyStopping,
  goal: Objective['goal'],
): StopDecision[] {
  const decisions: StopDecision[] = [];
  for (const trial of trials) {
    if (!trial.live || trial.points.length === 0) continue;
    const step = Math.max(...trial.points.map((p) => p.step));
    if (step < rule.minSteps) continue;
    const best = bestBy(trial.points, step, goal);
    if (best === undefined) continue;
    const others = trials.flatMap((other) => {
      if (other.runId === trial.runId || other.points.length === 0) return [];
      // Only trials that got as far: a trial at epoch 2 says nothing about epoch 5.
      if (Math.max(...other.points.map((p) => p.step)) < step) return [];
      const value = averageBy(other.points, step);
      return value === undefined ? [] : [value];
    });
    if (others.length < rule.minTrials) continue;
    const middle = median(others);
    if (isBetter(middle, best, goal)) decisions.push({ runId: trial.runId, step, best, median: middle, others: others.length });
  }
  return decisions;
}
