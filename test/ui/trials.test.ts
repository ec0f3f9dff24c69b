import { describe, expect, it } from 'vitest';
import type { ExperimentRun, Trial } from '../../ui/web/research-types';
import { axisOf, defaultObjective, niceTicks, experimentRows, rankRows, sweepRows, varyingHyperparameters } from '../../ui/web/trials';

const run = (runId: string, status: string, loss: number | undefined, hyperparameters: Record<string, string> = {}): ExperimentRun => ({
  runId,
  name: runId,
  status,
  createdAt: '2026-01-01T00:00:00Z',
  costUsd: 0.1,
  hyperparameters,
  ...(loss === undefined ? {} : { metrics: { final: { loss: loss + 0.01, acc: 1 - loss }, min: { loss, acc: 0.1 }, max: { loss: 2, acc: 1 - loss }, points: 3 } }),
});

describe('the trial rows of the experiment and sweep pages', () => {
  it('ranks by the best value for the goal and keeps runs without it last, in their order', () => {
    const runs = [run('a', 'SUCCEEDED', 0.5), run('b', 'FAILED_USER', undefined), run('c', 'STOPPED_EARLY', 0.9), run('d', 'SUCCEEDED', 0.1), run('e', 'TRAINING', undefined)];
    const lowest = rankRows(experimentRows(runs, { metric: 'loss', goal: 'minimize' }, false), 'minimize');
    const highestAcc = rankRows(experimentRows(runs, { metric: 'acc', goal: 'maximize' }, false), 'maximize');

    expect(lowest.map((r) => r.runId)).toEqual(['d', 'a', 'c', 'b', 'e']);
    expect(lowest.map((r) => r.index)).toEqual([4, 1, 3, 2, 5]);
    expect(lowest[0]?.final).toBe(0.11);
    expect(highestAcc.map((r) => r.runId)).toEqual(['d', 'a', 'c', 'b', 'e']);
    expect(highestAcc[0]?.best).toBe(0.9);
  });

  it("takes the sweep's objective, else loss, else the first metric", () => {
    const withLoss = [run('a', 'SUCCEEDED', 0.5)];
    const accOnly: ExperimentRun[] = [{ ...run('b', 'SUCCEEDED', undefined), metrics: { final: { acc: 0.9 }, min: { acc: 0.1 }, max: { acc: 0.9 }, points: 2 } }];

    expect(defaultObjective(withLoss, { metric: 'acc', goal: 'maximize' })).toEqual({ metric: 'acc', goal: 'maximize' });
    expect(defaultObjective(withLoss, undefined)).toEqual({ metric: 'loss', goal: 'minimize' });
    expect(defaultObjective(accOnly, undefined)).toEqual({ metric: 'acc', goal: 'minimize' });
  });

  it("joins a sweep's trials to their runs: live status from the run, skipped trials without one, the recorded best first", () => {
    const trials: Trial[] = [
      { sweepId: 'sw-1', trial: 0, runId: 'sw-1-0000', state: 'RECORDED', hyperparameters: { lr: '0.1' }, reservedUsd: 0.5, costUsd: 0.2, runStatus: 'SUCCEEDED', best: 0.25 },
      { sweepId: 'sw-1', trial: 1, runId: 'sw-1-0001', state: 'SKIPPED', hyperparameters: { lr: '0.01' }, reservedUsd: 0.5, reason: 'over budget' },
      { sweepId: 'sw-1', trial: 2, runId: 'sw-1-0002', state: 'LAUNCHED', hyperparameters: { lr: '0.001' }, reservedUsd: 0.5 },
    ];
    const runs = new Map([
      ['sw-1-0000', run('sw-1-0000', 'SUCCEEDED', 0.3)],
      ['sw-1-0002', { ...run('sw-1-0002', 'TRAINING', 0.7), statusReason: 'training' }],
    ]);

    const rows = sweepRows(trials, runs, { metric: 'loss', goal: 'minimize' });

    expect(rows.map((r) => [r.index, r.status, r.best, r.reason])).toEqual([
      [0, 'SUCCEEDED', 0.25, undefined],
      [1, 'SKIPPED', undefined, 'over budget'],
      [2, 'TRAINING', 0.7, 'training'],
    ]);
    expect(rows[1]?.name).toBeUndefined();
    expect(varyingHyperparameters(rows)).toEqual(['lr']);
  });

  it('draws a few values as categories in order, many numbers on a line, log across two decades', () => {
    expect(axisOf(['64', '32', '64', '128'])).toEqual({ kind: 'category', values: ['32', '64', '128'] });
    expect(axisOf(['adam', 'sgd', 'adam'])).toEqual({ kind: 'category', values: ['adam', 'sgd'] });
    const many = ['0.0001', '0.0003', '0.001', '0.003', '0.01', '0.03', '0.1'];
    expect(axisOf(many)).toEqual({ kind: 'log', min: 0.0001, max: 0.1 });
    expect(axisOf(['1', '2', '3', '4', '5', '6', '7'])).toEqual({ kind: 'linear', min: 1, max: 7 });
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.08, 0.3, 4)).toEqual([0.1, 0.2, 0.3]);
    expect(niceTicks(-3, -3)).toEqual([-3]);
  });
});
