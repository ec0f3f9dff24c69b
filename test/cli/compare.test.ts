import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comparisonCsv, objectiveBars, rankRuns } from '../../cli/commands/experiments';
import type { ExperimentRun } from '../../cli/research-types';
import { LOCAL_OWNER } from '../../local/runtime';
import type { RunRecord } from '../../shared/domain/run-record';
import { parseRunSpec } from '../../shared/domain/run-spec';
import { startLocalStack, type LocalStack } from './local-stack';
import { runCli } from './run-cli';

function row(runId: string, lr: string, losses: number[] | undefined): ExperimentRun {
  return {
    runId,
    name: 'mlp',
    status: 'SUCCEEDED',
    createdAt: '2026-01-01T00:00:00.000Z',
    costUsd: 0.5,
    hyperparameters: { lr, batch_size: '32' },
    metrics:
      losses === undefined
        ? undefined
        : { final: { loss: losses.at(-1) ?? 0, acc: 0.5 }, min: { loss: Math.min(...losses), acc: 0.5 }, max: { loss: Math.max(...losses), acc: 0.5 }, points: losses.length },
  };
}

describe('runctl compare', () => {
  it('ranks runs by the best objective, either way, runs that never reported it last', () => {
    const runs = [row('r-1', '0.1', [0.9, 0.6]), row('r-2', '0.01', undefined), row('r-3', '0.001', [0.8, 0.2, 0.3])];
    const low = rankRuns('lr', runs, 1, {});
    expect(low.objective).toEqual({ metric: 'loss', goal: 'minimize' });
    expect(low.runs.map((r) => [r.runId, r.best])).toEqual([['r-3', 0.2], ['r-1', 0.6], ['r-2', undefined]]);
    expect(low.metrics).toEqual(['loss', 'acc']);
    const high = rankRuns('lr', runs, 1, { maximize: true });
    expect(high.runs.map((r) => r.runId)).toEqual(['r-1', 'r-3', 'r-2']);
    const fromSweep = rankRuns('lr', runs, 1, { fallback: { metric: 'acc', goal: 'maximize' } });
    expect(fromSweep.objective).toEqual({ metric: 'acc', goal: 'maximize' });

    const bars = objectiveBars(low, 10).split('\n');
    expect(bars[1]).toBe('r-3  ##########  0.2');
    expect(bars[2]).toBe('r-1  #           0.6');
    expect(bars[3]).toContain('-');
    expect(comparisonCsv(low).split('\n')).toEqual([
      'RUN,STATUS,lr,batch_size,best loss,final loss,final acc,COST',
      'r-3,SUCCEEDED,0.001,32,0.2,0.3,0.5,0.5000',
      'r-1,SUCCEEDED,0.1,32,0.6,0.6,0.5,0.5000',
      'r-2,SUCCEEDED,0.01,32,,,,0.5000',
    ]);
  });

  describe('against the API', () => {
    let stack: LocalStack;
    let home: string;
    let env: Record<string, string>;

    beforeAll(async () => {
      stack = await startLocalStack();
      home = await mkdtemp(join(tmpdir(), 'runctl-compare-'));
      env = { HOME: home, RUNCTL_ENDPOINT: stack.api.url, AWS_PROFILE: '', AWS_REGION: 'us-east-1' };
      const lrs = ['0.3', '0.1', '0.03'];
      for (const [i, lr] of lrs.entries()) {
        const createdAt = new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString();
        const record: RunRecord = {
          runId: `r-cmp-${i}`,
          owner: LOCAL_OWNER,
          spec: parseRunSpec({
            name: `mlp-${i}`,
            experiment: 'lr-search',
            code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' },
            instance: { types: 'g5.xlarge' },
            hyperparameters: { lr },
          }),
          specHash: `h${i}`,
          status: 'SUCCEEDED',
          createdAt,
          updatedAt: createdAt,
          attempts: [],
          costUsd: 0.1,
          interruptions: 0,
          userFailures: 0,
          metrics: { final: { loss: 1 - i * 0.3 }, min: { loss: 1 - i * 0.3 }, max: { loss: 1 }, points: 4 },
        };
        await stack.deps.store.create(record);
      }
    });

    afterAll(async () => {
      await stack.stop();
      await rm(home, { recursive: true, force: true });
    });

    // Each CLI call is its own Node process; on a loaded machine one takes seconds to start.
    const CLI_MS = 120_000;

    it('lists the experiment and prints the comparison as a table with a plot', async () => {
      const ls = await runCli(['experiments', 'ls'], env);
      expect(ls.stderr).toBe('');
      expect(ls.stdout).toMatch(/lr-search\s+3/);

      const text = await runCli(['compare', 'lr-search'], env);
      expect(text.code).toBe(0);
      const lines = text.stdout.split('\n');
      expect(lines[0]).toBe('Experiment lr-search: 3 run(s), sorted by lowest loss');
      expect(lines[1]).toMatch(/^RUN\s+STATUS\s+lr\s+best loss\s+final loss\s+COST$/);
      expect(lines[2]).toMatch(/^r-cmp-2\s+SUCCEEDED\s+0\.03\s+0\.4/);
      expect(text.stdout).toContain('best loss per run (minimize; longer is better)');
    }, CLI_MS);

    it('prints it as CSV and as JSON, and names an experiment that is not there', async () => {
      const csv = await runCli(['compare', 'lr-search', '--csv'], env);
      expect(csv.stdout.trim().split('\n').map((l) => l.split(',')[0])).toEqual(['RUN', 'r-cmp-2', 'r-cmp-1', 'r-cmp-0']);

      const json = await runCli(['compare', 'lr-search', '--json', '--maximize'], env);
      const parsed: unknown = JSON.parse(json.stdout);
      expect(parsed).toMatchObject({ objective: { metric: 'loss', goal: 'maximize' }, pages: 1, runs: [{ runId: 'r-cmp-0' }, {}, {}] });

      const missing = await runCli(['compare', 'nope'], env);
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toMatch(/Experiment nope not found/);
    }, CLI_MS);
  });
});
