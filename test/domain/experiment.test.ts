import { describe, expect, it } from 'vitest';
import { bestOf, experimentOf, sortByObjective, summarizeMetrics } from '../../shared/domain/experiment';
import { parseRunSpec } from '../../shared/domain/run-spec';

const base = {
  name: 'resnet',
  code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' },
  instance: { types: 'g5.xlarge' },
};

describe('experiments', () => {
  it('puts a run in its named experiment, else in one named after the run', () => {
    expect(experimentOf(parseRunSpec({ ...base, experiment: 'lr-search' }))).toBe('lr-search');
    expect(experimentOf(parseRunSpec(base))).toBe('resnet');
  });

  it('refuses an experiment name that could not be a path segment', () => {
    expect(() => parseRunSpec({ ...base, experiment: 'a/b' })).toThrow(/experiment: must be 1-63 letters/);
  });

  it('summarises metrics lines into the final, smallest and largest value of each metric', () => {
    const summary = summarizeMetrics([
      { ts: '2026-01-01T00:00:00Z', attempt: 1, epoch: 1, loss: 0.9 },
      { ts: '2026-01-01T00:00:01Z', attempt: 1, epoch: 2, loss: 0.4, acc: 0.7 },
      { ts: '2026-01-01T00:00:02Z', attempt: 2, epoch: 3, loss: 0.5, note: 'text is not a metric' },
      { ts: '2026-01-01T00:00:03Z', attempt: 2 },
    ]);
    expect(summary).toEqual({
      final: { epoch: 3, loss: 0.5, acc: 0.7 },
      min: { epoch: 1, loss: 0.4, acc: 0.7 },
      max: { epoch: 3, loss: 0.9, acc: 0.7 },
      points: 3,
    });
    expect(summary && bestOf(summary, { metric: 'loss', goal: 'minimize' })).toBe(0.4);
    expect(summary && bestOf(summary, { metric: 'loss', goal: 'maximize' })).toBe(0.9);
    expect(summarizeMetrics([{ ts: 'x', attempt: 1 }])).toBeUndefined();
  });

  it('sorts best first either way, runs without the metric last in their order', () => {
    const rows = [{ id: 'a', v: 0.5 }, { id: 'b', v: undefined }, { id: 'c', v: 0.1 }, { id: 'd', v: 0.9 }, { id: 'e', v: undefined }];
    expect(sortByObjective(rows, (r) => r.v, 'minimize').map((r) => r.id)).toEqual(['c', 'a', 'd', 'b', 'e']);
    expect(sortByObjective(rows, (r) => r.v, 'maximize').map((r) => r.id)).toEqual(['d', 'a', 'c', 'b', 'e']);
  });
});
