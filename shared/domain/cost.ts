import type { Attempt } from './run-record';
import type { RunSpec } from './run-spec';
import type { RunStatus } from './run-status';

/**
 * Cost so far and the run's limits. EC2 bills Linux instances per second, at the price in
 * effect during each second (spot prices change a few times a day), so the cost of an attempt
 * is the integral of its price over its lifetime: a step function for spot, a constant for
 * on-demand. Pure functions, no AWS: the reconciler supplies the prices.
 */

const MS_PER_HOUR = 3_600_000;

/** One point of a price history: `priceUsd` per hour is in effect from `at` until the next point. */
export interface PricePoint {
  at: string;
  priceUsd: number;
}

/** How an attempt is priced: a constant rate, or a spot price history with a rate for any gap. */
export type AttemptRate =
  | { kind: 'flat'; perHourUsd: number }
  | { kind: 'history'; points: readonly PricePoint[]; fallbackPerHourUsd: number };

/** The interval an attempt was (or still is) billed for; undefined before it has an instance. */
export function billedInterval(
  attempts: readonly Attempt[],
  attempt: Attempt,
  now: Date,
): { start: Date; end: Date } | undefined {
  if (attempt.instanceId === undefined) return undefined;
  const start = new Date(attempt.startedAt);
  // An attempt that was never closed (its release failed) is bounded by the next attempt's
  // start: the state machine releases the old instance before it provisions a new one.
  const next = attempts.find((a) => a.attempt === attempt.attempt + 1);
  const endText = attempt.endedAt ?? next?.startedAt;
  const end = endText === undefined ? now : new Date(Math.min(new Date(endText).getTime(), now.getTime()));
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start) return { start, end: start };
  return { start, end };
}

/**
 * USD for `[start, end]` under a price history: each point's price holds until the next point.
 * Before the first point (history that starts late) the fallback rate applies.
 */
export function costFromHistory(points: readonly PricePoint[], start: Date, end: Date, fallbackPerHourUsd: number): number {
  const sorted = points
    .map((p) => ({ at: new Date(p.at).getTime(), priceUsd: p.priceUsd }))
    .filter((p) => !Number.isNaN(p.at))
    .sort((a, b) => a.at - b.at);
  const from = start.getTime();
  const to = end.getTime();
  if (to <= from) return 0;
  let usd = 0;
  let cursor = from;
  // The rate in effect at `from`: the newest point at or before it, else the fallback.
  let rate = fallbackPerHourUsd;
  for (const point of sorted) {
    if (point.at <= from) {
      rate = point.priceUsd;
      continue;
    }
    if (point.at >= to) break;
    usd += (rate * (point.at - cursor)) / MS_PER_HOUR;
    cursor = point.at;
    rate = point.priceUsd;
  }
  return usd + (rate * (to - cursor)) / MS_PER_HOUR;
}

/** USD an attempt has cost so far under `rate`. */
export function attemptCostUsd(attempts: readonly Attempt[], attempt: Attempt, rate: AttemptRate, now: Date): number {
  const interval = billedInterval(attempts, attempt, now);
  if (interval === undefined) return 0;
  if (rate.kind === 'flat') return (rate.perHourUsd * (interval.end.getTime() - interval.start.getTime())) / MS_PER_HOUR;
  return costFromHistory(rate.points, interval.start, interval.end, rate.fallbackPerHourUsd);
}

export interface RunCost {
  /** Rounded to the cent. */
  usd: number;
  /** Attempts with an instance whose price could not be found (counted as 0). */
  unpriced: number[];
}

/**
 * A replacement launched on a spot warning that no attempt adopted (the old attempt finished, a
 * cancel, a failure), as the attempt it was billed like: from its launch to its release, or to
 * now while it still runs. An adopted one is the next attempt's instance, billed as that attempt
 * (whose start is the replacement's launch).
 */
export function unadoptedReplacements(attempts: readonly Attempt[]): Attempt[] {
  // A multi-node attempt adopts a replacement as one of its nodes (any rank).
  const adopted = new Set(attempts.flatMap((a) => [a.instanceId, ...(a.nodes ?? []).map((n) => n.instanceId)]).filter((id) => id !== undefined));
  return attempts.flatMap((attempt) => {
    const replacement = attempt.replacement;
    if (replacement === undefined || adopted.has(replacement.instanceId)) return [];
    return [
      {
        attempt: replacement.attempt,
        instanceId: replacement.instanceId,
        instanceType: replacement.instanceType,
        availabilityZone: replacement.availabilityZone,
        spot: replacement.spot,
        startedAt: replacement.launchedAt,
        ...(replacement.releasedAt === undefined ? {} : { endedAt: replacement.releasedAt }),
      },
    ];
  });
}

/**
 * Cost so far: the sum over attempts (and replacements no attempt adopted) of their billed hours
 * × their price × their instances (every node of a multi-node attempt is billed like rank 0: one
 * type, one AZ, one market).
 */
export function runCostUsd(
  attempts: readonly Attempt[],
  rateOf: (attempt: Attempt) => AttemptRate | undefined,
  now: Date,
): RunCost {
  let usd = 0;
  const unpriced: number[] = [];
  for (const attempt of attempts) {
    if (attempt.instanceId === undefined) continue;
    const rate = rateOf(attempt);
    if (rate === undefined) unpriced.push(attempt.attempt);
    else usd += attemptCostUsd(attempts, attempt, rate, now) * (attempt.nodes?.length ?? 1);
  }
  for (const replacement of unadoptedReplacements(attempts)) {
    const rate = rateOf(replacement);
    if (rate === undefined) unpriced.push(replacement.attempt);
    else usd += attemptCostUsd([replacement], replacement, rate, now);
  }
  return { usd: roundCents(usd), unpriced };
}

export function roundCents(usd: number): number {
  return Math.round(usd * 100) / 100;
}

/** Which limit a run passed. */
export type BudgetLimit = 'maxRuntime' | 'maxCostUsd';

export type BudgetVerdict = { over: false } | { over: true; limit: BudgetLimit; reason: string };

/** Whether a run has passed `limits.maxRuntime` (wall clock since it was created) or `limits.maxCostUsd`. */
export function budgetVerdict(
  run: { createdAt: string; spec: Pick<RunSpec, 'limits'> },
  costUsd: number,
  now: Date,
): BudgetVerdict {
  const { maxRuntime, maxCostUsd } = run.spec.limits;
  if (maxCostUsd !== undefined && costUsd >= maxCostUsd) {
    return {
      over: true,
      limit: 'maxCostUsd',
      reason: `${BUDGET_STOP_PREFIX} limits.maxCostUsd is $${maxCostUsd.toFixed(2)} and the run has cost $${costUsd.toFixed(2)}; checkpointing, then stopping`,
    };
  }
  const elapsedSeconds = (now.getTime() - new Date(run.createdAt).getTime()) / 1000;
  if (elapsedSeconds >= maxRuntime) {
    return {
      over: true,
      limit: 'maxRuntime',
      reason: `${BUDGET_STOP_PREFIX} limits.maxRuntime is ${formatSeconds(maxRuntime)} and the run has been going for ${formatSeconds(Math.floor(elapsedSeconds))}; checkpointing, then stopping`,
    };
  }
  return { over: false };
}

/**
 * Opens the status reason of a run the reconciler stopped for its budget. The run is moved to
 * CANCELLING (the one status every live status may move to, and that no step leaves except to a
 * terminal status), so the reason survives until FinishRun, which maps such a run to
 * STOPPED_BUDGET instead of CANCELLED (see isBudgetStop).
 */
export const BUDGET_STOP_PREFIX = 'Budget exceeded:';

/** True for a run that is stopping because the reconciler found it over a limit. */
export function isBudgetStop(run: { status: RunStatus; statusReason?: string }): boolean {
  return run.status === 'CANCELLING' && (run.statusReason?.startsWith(BUDGET_STOP_PREFIX) ?? false);
}

/** `90061` → `1d 1h 1m`. */
export function formatSeconds(total: number): string {
  const units: [number, string][] = [
    [86_400, 'd'],
    [3600, 'h'],
    [60, 'm'],
    [1, 's'],
  ];
  const parts: string[] = [];
  let rest = Math.max(0, Math.floor(total));
  for (const [size, unit] of units) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.length === 0 ? '0s' : parts.slice(0, 3).join(' ');
}
