import { describe, expect, it } from 'vitest';
import {
  attemptCostUsd,
  billedInterval,
  budgetVerdict,
  costFromHistory,
  formatSeconds,
  isBudgetStop,
  runCostUsd,
  type AttemptRate,
} from '../../shared/domain/cost';
import { onDemandPricePerHour, UNKNOWN_REGION_PRICE_FACTOR, US_EAST_1_ON_DEMAND_USD_PER_HOUR } from '../../shared/domain/pricing';
import type { Attempt } from '../../shared/domain/run-record';

const T0 = '2026-03-01T00:00:00.000Z';
const at = (hours: number) => new Date(Date.parse(T0) + hours * 3_600_000);
const iso = (hours: number) => at(hours).toISOString();

function attempt(n: number, overrides: Partial<Attempt> = {}): Attempt {
  return { attempt: n, instanceId: `i-${n}`, instanceType: 'g5.xlarge', availabilityZone: 'us-east-1a', spot: false, startedAt: iso(0), ...overrides };
}

describe('costFromHistory', () => {
  const history = [
    { at: iso(-1), priceUsd: 0.3 },
    { at: iso(2), priceUsd: 0.5 },
    { at: iso(3), priceUsd: 0.4 },
  ];

  it.each([
    ['inside one price', 0, 1, 0.3],
    ['across one change', 1, 3, 0.3 + 0.5],
    ['across two changes', 0, 4, 0.3 * 2 + 0.5 + 0.4],
    ['after the last point', 5, 7, 0.8],
    ['an empty interval', 2, 2, 0],
    ['a reversed interval', 3, 1, 0],
  ])('prices %s', (_label, from, to, expected) => {
    expect(costFromHistory(history, at(from), at(to), 9)).toBeCloseTo(expected, 10);
  });

  it('uses the fallback rate before the first known price, and sorts unsorted points', () => {
    const late = [
      { at: iso(3), priceUsd: 0.4 },
      { at: iso(1), priceUsd: 0.2 },
    ];
    expect(costFromHistory(late, at(0), at(4), 1)).toBeCloseTo(1 + 0.2 * 2 + 0.4, 10);
  });
});

describe('billedInterval', () => {
  const now = at(10);

  it.each<[string, Attempt[], number, [number, number] | undefined]>([
    ['an open attempt runs until now', [attempt(1)], 1, [0, 10]],
    ['a closed attempt ends at endedAt', [attempt(1, { endedAt: iso(2) })], 1, [0, 2]],
    ['an unclosed older attempt ends when the next one started', [attempt(1), attempt(2, { startedAt: iso(3) })], 1, [0, 3]],
    ['an attempt without an instance costs nothing', [attempt(1, { instanceId: undefined })], 1, undefined],
    ['an end in the future is cut at now', [attempt(1, { endedAt: iso(12) })], 1, [0, 10]],
  ])('%s', (_label, attempts, n, expected) => {
    const target = attempts.find((a) => a.attempt === n);
    if (target === undefined) throw new Error('no such attempt');
    const interval = billedInterval(attempts, target, now);
    if (expected === undefined) expect(interval).toBeUndefined();
    else expect(interval).toEqual({ start: at(expected[0]), end: at(expected[1]) });
  });
});

describe('runCostUsd', () => {
  const now = at(10);
  const flat = (perHourUsd: number): AttemptRate => ({ kind: 'flat', perHourUsd });

  it('sums attempts: on-demand flat, spot along its history, rounded to the cent', () => {
    const attempts = [
      attempt(1, { endedAt: iso(2) }),
      attempt(2, { spot: true, startedAt: iso(2), endedAt: iso(6) }),
      attempt(3, { startedAt: iso(6) }),
    ];
    const history: AttemptRate = { kind: 'history', points: [{ at: iso(0), priceUsd: 0.4 }, { at: iso(4), priceUsd: 0.6 }], fallbackPerHourUsd: 1 };
    const cost = runCostUsd(attempts, (a) => (a.spot ? history : flat(1.006)), now);

    // 2 h × 1.006 + (2 h × 0.4 + 2 h × 0.6) + 4 h × 1.006
    expect(cost).toEqual({ usd: 8.04, unpriced: [] });
  });

  it('lists attempts without a price and counts them as nothing', () => {
    const cost = runCostUsd([attempt(1), attempt(2, { instanceType: 'x9.huge', startedAt: iso(5) })], (a) => (a.instanceType === 'x9.huge' ? undefined : flat(1)), now);

    expect(cost).toEqual({ usd: 5, unpriced: [2] });
  });

  it('bills a replacement no attempt adopted from its launch to its release (or to now), and an adopted one once, as its attempt', () => {
    const flat = (perHourUsd: number): AttemptRate => ({ kind: 'flat', perHourUsd });
    const replacement = { attempt: 2, instanceId: 'i-r', instanceType: 'g5.2xlarge', availabilityZone: 'us-east-1b', spot: true, launchedAt: iso(1) };
    const rates = (a: Attempt) => flat(a.instanceType === 'g5.2xlarge' ? 2 : 1);
    // The old attempt finished after the warning: the replacement ran 30 minutes, then was released.
    const released = [attempt(1, { endedAt: iso(2), replacement: { ...replacement, releasedAt: iso(1.5) } })];
    expect(runCostUsd(released, rates, at(5)).usd).toBe(2 * 1 + 0.5 * 2);
    // Still running, not adopted yet: billed until now.
    const running = [attempt(1, { endedAt: iso(2), replacement })];
    expect(runCostUsd(running, rates, at(2)).usd).toBe(2 * 1 + 1 * 2);
    // Adopted: attempt 2 is that instance, billed from the replacement's launch, and not twice.
    const adopted = [
      attempt(1, { endedAt: iso(1.25), replacement }),
      attempt(2, { instanceId: 'i-r', instanceType: 'g5.2xlarge', startedAt: iso(1), endedAt: iso(3) }),
    ];
    expect(runCostUsd(adopted, rates, at(5)).usd).toBe(1.25 * 1 + 2 * 2);
    // A replacement without a price is listed, as an attempt would be.
    expect(runCostUsd(released, (a) => (a.instanceId === 'i-r' ? undefined : flat(1)), at(5)).unpriced).toEqual([2]);
  });

  it('a single attempt of 90 minutes at $1.006/h', () => {
    expect(attemptCostUsd([attempt(1)], attempt(1), flat(1.006), at(1.5))).toBeCloseTo(1.509, 10);
  });
});

describe('budgetVerdict', () => {
  const run = (limits: { maxRuntime: number; maxCostUsd?: number }) => ({ createdAt: T0, spec: { limits } });

  it.each<[string, { maxRuntime: number; maxCostUsd?: number }, number, number, false | 'maxCostUsd' | 'maxRuntime']>([
    ['under both limits', { maxRuntime: 86_400, maxCostUsd: 20 }, 19.99, 5, false],
    ['at the cost limit', { maxRuntime: 86_400, maxCostUsd: 20 }, 20, 5, 'maxCostUsd'],
    ['over the runtime', { maxRuntime: 3600 }, 0, 1.01, 'maxRuntime'],
    ['no cost limit, any cost', { maxRuntime: 86_400 }, 10_000, 5, false],
    ['both: cost is named first', { maxRuntime: 3600, maxCostUsd: 1 }, 2, 2, 'maxCostUsd'],
  ])('%s', (_label, limits, costUsd, hours, expected) => {
    const verdict = budgetVerdict(run(limits), costUsd, at(hours));
    if (expected === false) expect(verdict.over).toBe(false);
    else expect(verdict).toMatchObject({ over: true, limit: expected });
  });

  it('says what was passed, in words a user can act on, and marks the reason as a budget stop', () => {
    const verdict = budgetVerdict(run({ maxRuntime: 86_400, maxCostUsd: 20 }), 20.31, at(5));
    if (!verdict.over) throw new Error('expected over budget');

    expect(verdict.reason).toBe('Budget exceeded: limits.maxCostUsd is $20.00 and the run has cost $20.31; checkpointing, then stopping');
    expect(isBudgetStop({ status: 'CANCELLING', statusReason: verdict.reason })).toBe(true);
    expect(isBudgetStop({ status: 'CANCELLING', statusReason: 'Cancel requested: checkpointing, then releasing' })).toBe(false);
    expect(isBudgetStop({ status: 'TRAINING', statusReason: verdict.reason })).toBe(false);
  });

  it('formats durations', () => {
    expect([formatSeconds(0), formatSeconds(90), formatSeconds(43_200), formatSeconds(90_061)]).toEqual(['0s', '1m 30s', '12h', '1d 1h 1m']);
  });
});

describe('on-demand price table', () => {
  it('prices known types in us-east-1 as listed, and other regions by their factor', () => {
    expect(onDemandPricePerHour('g5.xlarge', 'us-east-1')).toBe(1.006);
    expect(onDemandPricePerHour('g5.xlarge', 'eu-west-1')).toBe(Math.round(1.006 * 1.13 * 10_000) / 10_000);
    expect(onDemandPricePerHour('g5.xlarge', 'xx-nowhere-9')).toBe(Math.round(1.006 * UNKNOWN_REGION_PRICE_FACTOR * 10_000) / 10_000);
    expect(onDemandPricePerHour('x9.huge', 'us-east-1')).toBeUndefined();
  });

  it('holds a positive price for every listed type, and a bigger size never costs less from xlarge to 8xlarge in g4dn, g5 and g6', () => {
    for (const [type, price] of Object.entries(US_EAST_1_ON_DEMAND_USD_PER_HOUR)) {
      expect(price, type).toBeGreaterThan(0);
    }
    for (const family of ['g4dn', 'g5', 'g6']) {
      const sizes = ['xlarge', '2xlarge', '4xlarge', '8xlarge'].map((s) => US_EAST_1_ON_DEMAND_USD_PER_HOUR[`${family}.${s}`] ?? 0);
      expect(sizes).toEqual([...sizes].sort((a, b) => a - b));
    }
  });
});
