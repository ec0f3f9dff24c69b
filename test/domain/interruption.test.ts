import { describe, expect, it } from 'vitest';
import { interruptionTimelines, overlapLine, type TimelineAttempt } from '../../shared/domain/interruption';
import { RunSpecSchema } from '../../shared/domain/run-spec';
import type { Attempt, RunRecord } from '../../shared/domain/run-record';
import { replacementSituation } from '../../shared/usecases/prepare-replacement';

const warned: TimelineAttempt = {
  attempt: 1,
  instanceId: 'i-old',
  warnedAt: '2026-12-01T10:00:00Z',
  replacement: { instanceId: 'i-new' },
};

describe('interruption timeline', () => {
  it('reports each warned attempt with its overhead once the next attempt trains', () => {
    const attempts: TimelineAttempt[] = [
      { ...warned, checkpointCompletedAt: '2026-12-01T10:00:21Z', replacement: { instanceId: 'i-new', readyAt: '2026-12-01T10:01:15Z' }, endedAt: '2026-12-01T10:00:22Z' },
      { attempt: 2, instanceId: 'i-new', trainingStartedAt: '2026-12-01T10:01:50.500Z' },
    ];

    expect(interruptionTimelines(attempts)).toEqual([
      {
        attempt: 1,
        warnedAt: '2026-12-01T10:00:00Z',
        checkpointCompletedAt: '2026-12-01T10:00:21Z',
        replacementInstanceId: 'i-new',
        replacementReadyAt: '2026-12-01T10:01:15Z',
        trainingResumedAt: '2026-12-01T10:01:50.500Z',
        overheadSeconds: 110.5,
      },
    ]);
    expect(interruptionTimelines([{ attempt: 1, instanceId: 'i-a' }])).toEqual([]);
  });

  it('says what the overlap is doing, and nothing once the replacement is released', () => {
    const now = new Date('2026-12-01T10:00:12Z');
    expect(overlapLine([warned], now)).toBe('replacement i-new booting while i-old uploads its checkpoint (12 s after the warning)');
    expect(overlapLine([{ ...warned, replacement: { instanceId: 'i-new', readyAt: 'x' } }], now)).toContain('i-new online, copying data while i-old uploads');
    expect(overlapLine([{ ...warned, checkpointCompletedAt: 'x', replacement: { instanceId: 'i-new', readyAt: 'x', dataReadyAt: 'x' } }], now)).toContain(
      "i-new ready while i-old's checkpoint is complete",
    );
    const uploading = { ...warned, checkpointUpload: { bytes: 1_234_000_000, totalBytes: 2_000_000_000, at: 'x' } };
    expect(overlapLine([uploading], now)).toBe('replacement i-new booting while i-old uploads its checkpoint: 1.2 of 2.0 GB (12 s after the warning)');
    expect(overlapLine([{ ...warned, checkpointUpload: { bytes: 300_000, totalBytes: 9_400_000, at: 'x' } }], now)).toContain('uploads its checkpoint: 0.3 of 9.4 MB');
    expect(overlapLine([{ ...uploading, checkpointCompletedAt: 'x' }], now)).toContain("i-old's checkpoint is complete (");
    expect(overlapLine([{ ...warned, replacement: { instanceId: 'i-new', releasedAt: 'x' } }], now)).toBeUndefined();
    expect(overlapLine([{ attempt: 1, instanceId: 'i-old' }], now)).toBeUndefined();
  });

  it("names the warned node's replacement of a multi-node run, while rank 0 uploads the run's checkpoint", () => {
    const now = new Date('2026-12-01T10:00:12Z');
    const nodes = { ...warned, replacement: { instanceId: 'i-new', rank: 2, readyAt: 'x' }, checkpointUpload: { bytes: 500_000_000, totalBytes: 2_000_000_000, at: 'x' } };
    expect(overlapLine([nodes], now)).toBe("node 2's replacement i-new online, copying data while rank 0 i-old uploads the run's checkpoint: 0.5 of 2.0 GB (12 s after the warning)");
  });

  it('dates a handover from the moment it asked the attempt to stop, its replacement already ready', () => {
    const now = new Date('2026-12-01T10:00:12Z');
    const handover = { ...warned, replacement: { instanceId: 'i-new', trigger: 'rebalance' as const, readyAt: 'x', dataReadyAt: 'x' } };
    expect(overlapLine([handover], now)).toBe('replacement i-new ready while i-old uploads its checkpoint (12 s after the handover asked it to stop)');
  });
});

describe('replacement situation', () => {
  const spec = RunSpecSchema.parse({ name: 'n', code: { bundle: 's3://bucket/bundles/x.tar.gz', entrypoint: 'train.py' }, instance: { types: ['g5.xlarge'] } });
  const record = (status: RunRecord['status'], attempts: Attempt[], extra: Partial<RunRecord> = {}): RunRecord => ({
    runId: 'r-1', owner: 'o', spec, specHash: 'h', status, createdAt: 't', updatedAt: 't', attempts, costUsd: 0, interruptions: 0, userFailures: 0, ...extra,
  });
  const replacement = { attempt: 2, instanceId: 'i-new', instanceType: 'g5.xlarge', availabilityZone: 'a', spot: true, launchedAt: 't' };
  const first: Attempt = { attempt: 1, instanceId: 'i-old', spot: true, startedAt: 't', endReason: 'SPOT_INTERRUPTED', replacement };

  it.each([
    ['while the old attempt checkpoints', record('CHECKPOINTING', [first]), 'preparing'],
    ['after the run took it as attempt 2', record('TRAINING', [first, { attempt: 2, instanceId: 'i-new', spot: true, startedAt: 't' }]), 'adopted'],
    ['when attempt 2 runs elsewhere', record('TRAINING', [first, { attempt: 2, instanceId: 'i-other', spot: true, startedAt: 't' }]), 'unwanted'],
    ['when the old attempt finished training after the warning', record('FINALIZING', [{ ...first, endReason: 'SUCCEEDED' }]), 'unwanted'],
    ['when the run is being cancelled', record('CANCELLING', [first]), 'unwanted'],
    ['when a cancel was asked for', record('CHECKPOINTING', [first], { cancelRequested: { at: 't', force: false } }), 'unwanted'],
    ['when the run ended', record('FAILED_NO_CAPACITY', [first]), 'unwanted'],
  ] as const)('%s: %s', (_name, run, kind) => {
    expect(replacementSituation(run, 1).kind).toBe(kind);
  });
});
