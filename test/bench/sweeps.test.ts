import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { measureSweeps } from '../../bench/sweeps';

describe('the sweeps bench (bench/sweeps.ts), at small sizes', () => {
  it('counts what a sweep costs per trial, the same at every size, and reads every run of an experiment a page at a time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'runctl-bench-sweeps-test-'));
    try {
      const { sweeps, compare } = await measureSweeps(dir, { trials: [4, 8], distributed: 8, runs: [50, 150] });

      expect(sweeps.map((s) => [s.trials, s.map, s.childExecutions])).toEqual([[4, 'inline', 4], [8, 'inline', 8], [8, 'distributed', 8]]);
      // StartSweep, the choice, the Map and FinishSweep once; PrepareTrial, its choice, RunTrial and RecordTrial per trial.
      expect(sweeps.map((s) => s.transitions)).toEqual([4 + 4 * 4, 4 + 4 * 8, 4 + 4 * 8]);
      expect(sweeps.map((s) => s.lambdaInvocations)).toEqual([2 + 2 * 4, 2 + 2 * 8, 2 + 2 * 8]);
      // Linear: a fixed part plus the same DynamoDB requests per trial, whichever Map runs them.
      const [four = 0, eight = 0, distributed = 0] = sweeps.map((s) => s.dynamodb);
      const perTrial = (eight - four) / 4;
      expect(Number.isInteger(perTrial)).toBe(true);
      expect(perTrial).toBeLessThanOrEqual(12);
      expect(four - 4 * perTrial).toBe(eight - 8 * perTrial);
      expect(distributed).toBe(eight);

      // 100 runs a page, one query each.
      expect(compare.map((c) => [c.runs, c.pages, c.dynamodbQueries])).toEqual([[50, 1, 1], [150, 2, 2]]);
      // The best run is the last one written: found only when every page was read.
      expect(compare.map((c) => c.best)).toEqual(['r-compare-50-000049', 'r-compare-150-000149']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
