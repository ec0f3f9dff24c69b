import { describe, expect, it } from 'vitest';
import { EXPERIMENT_RUNS, SWEEP_TRIALS, expectedTrialViews, syntheticExperiment } from '../../bench/ui';
import { ExperimentRunSchema } from '../../cli/research-types';
import type { ExperimentRun, Trial } from '../../ui/web/research-types';
import { experimentRows, sweepRows, varyingHyperparameters } from '../../ui/web/trials';

/**
 * The dashboard bench (bench/ui.ts) times the experiment and sweep pages until every row and
 * every objective point is drawn. Those counts must be what the pages' own row builders make of
 * the synthetic data, or the bench would wait forever (or stop early); and the data must have
 * the API's shape and the variety a real sweep has, or it would time a page no one sees.
 */
describe('the dashboard bench data (bench/ui.ts)', () => {
  const data = syntheticExperiment();
  const runs: ExperimentRun[] = data.runs;
  const trials: Trial[] = data.trials;
  const objective = { metric: 'loss', goal: 'minimize' } as const;

  it('is an experiment of 1,000 runs in the API shape, and a sweep of 200 trials whose launched ones are among them', () => {
    expect(runs).toHaveLength(EXPERIMENT_RUNS);
    expect(trials).toHaveLength(SWEEP_TRIALS);
    for (const run of runs) expect(ExperimentRunSchema.safeParse(run).success, run.runId).toBe(true);
    expect(new Set(runs.map((r) => r.runId)).size).toBe(EXPERIMENT_RUNS);
    const runIds = new Set(runs.map((r) => r.runId));
    for (const trial of trials) expect(runIds.has(trial.runId), `trial ${trial.trial}`).toBe(trial.state !== 'SKIPPED');
    expect(data.sweep).toMatchObject({ trials: SWEEP_TRIALS, launched: runs.filter((r) => r.sweep !== undefined).length });
  });

  it('holds every kind of trial the sweep page marks, and hyperparameters that vary', () => {
    const sweepRuns = runs.filter((r) => r.sweep !== undefined);
    expect(new Set(sweepRuns.map((r) => r.status))).toEqual(new Set(['SUCCEEDED', 'STOPPED_EARLY', 'FAILED_USER', 'TRAINING']));
    expect(trials.some((t) => t.state === 'SKIPPED' && t.reason !== undefined)).toBe(true);
    expect(sweepRuns.some((r) => r.metrics === undefined)).toBe(true);
    expect(varyingHyperparameters(experimentRows(runs, objective, false))).toEqual(['lr', 'batch_size', 'optimizer']);
    // Enough distinct learning rates for a logarithmic number line, not categories.
    expect(new Set(runs.map((r) => r.hyperparameters.lr)).size).toBeGreaterThan(100);
  });

  it('expects the rows and objective points the pages build from it', () => {
    const expected = expectedTrialViews(data);
    const experiment = experimentRows(runs, objective, false);
    const sweep = sweepRows(trials, new Map(runs.filter((r) => r.sweep !== undefined).map((r) => [r.runId, r])), objective);

    expect(expected.experiment).toEqual({ rows: experiment.length, points: experiment.filter((r) => r.best !== undefined).length, sweeps: 1 });
    expect(expected.sweep).toEqual({ rows: sweep.length, points: sweep.filter((r) => r.best !== undefined).length, sweeps: 0 });
    expect(expected.sweep.points).toBeLessThan(SWEEP_TRIALS);
  });
});
