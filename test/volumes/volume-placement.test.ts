import { describe, expect, it } from 'vitest';
import { decideVolumePlacement, preferredAzForVolume, type VolumeObservation } from '../../shared/domain/volume-placement';

const DATASET = 's3://datasets-bucket/imagenet/';
const snapshot = { snapshotId: 'snap-1', completed: true };
const volume = { volumeId: 'vol-1', az: 'us-east-1a', available: true };
const observed = (o: Partial<VolumeObservation> = {}): VolumeObservation => ({ datasetUri: DATASET, volume, snapshot, ...o });
const request = { runId: 'r-1', instanceAz: 'us-east-1a', allowedAzs: [] as string[], initialize: true };

describe('decideVolumePlacement', () => {
  it.each([
    ['the catalogued volume is free and in the instance AZ', observed(), request, { action: 'use-catalogued', volumeId: 'vol-1', initialize: false }],
    ['this run already claimed it (a retried step)', observed({ volume: { ...volume, claimedBy: 'r-1' } }), request, { action: 'use-catalogued', volumeId: 'vol-1' }],
    ['the volume is in another AZ', observed(), { ...request, instanceAz: 'us-east-1b' }, { action: 'restore', snapshotId: 'snap-1', az: 'us-east-1b', initialize: true }],
    ['the volume is attached somewhere', observed({ volume: { ...volume, available: false } }), request, { action: 'restore', az: 'us-east-1a' }],
    ['another run claimed it', observed({ volume: { ...volume, claimedBy: 'r-2' } }), request, { action: 'restore', reason: expect.stringContaining('r-2') }],
    ['the volume is gone', observed({ volume: undefined }), request, { action: 'restore', reason: 'the catalogued volume is gone' }],
    ['the restore needs no initialization', observed(), { ...request, instanceAz: 'us-east-1b', initialize: false }, { action: 'restore', initialize: false }],
    ['nothing is catalogued', undefined, request, { action: 'refuse', error: 'Volume.NotCatalogued' }],
    ['the instance is outside the pinned AZs', observed(), { ...request, allowedAzs: ['us-east-1c'] }, { action: 'refuse', error: 'Volume.AzMismatch' }],
    ['only the volume is left, in another AZ', observed({ snapshot: undefined }), { ...request, instanceAz: 'us-east-1b' }, { action: 'refuse', error: 'Volume.AzMismatch' }],
    ['only the volume is left, and it is in use', observed({ snapshot: undefined, volume: { ...volume, claimedBy: 'r-2' } }), request, { action: 'refuse', error: 'Volume.InUse', message: expect.stringContaining('r-2') }],
    ['neither volume nor snapshot is left', observed({ snapshot: undefined, volume: undefined }), request, { action: 'refuse', error: 'Snapshot.Missing' }],
    ['the snapshot is still pending and the volume busy', observed({ snapshot: { snapshotId: 'snap-1', completed: false }, volume: { ...volume, available: false } }), request, { action: 'refuse', error: 'Snapshot.Missing' }],
  ])('when %s', (_label, observation, req, expected) => {
    expect(decideVolumePlacement(observation, req)).toMatchObject(expected);
  });

  it('never attaches across AZs or shares a volume: every use-catalogued answer is free, unclaimed by others and in the instance AZ', () => {
    const azs = ['us-east-1a', 'us-east-1b'];
    for (const az of azs) for (const instanceAz of azs) for (const available of [true, false]) for (const claimedBy of [undefined, 'r-1', 'r-2']) {
      const placement = decideVolumePlacement(observed({ volume: { volumeId: 'vol-1', az, available, claimedBy } }), { ...request, instanceAz });
      if (placement.action === 'use-catalogued') {
        expect(az).toBe(instanceAz);
        expect(available).toBe(true);
        expect(claimedBy === undefined || claimedBy === 'r-1').toBe(true);
      } else {
        expect(placement).toMatchObject({ action: 'restore', az: instanceAz });
      }
    }
  });
});

describe('preferredAzForVolume', () => {
  it.each([
    ['a free volume', observed(), [], 'us-east-1a'],
    ['a free volume in an allowed AZ', observed(), ['us-east-1a', 'us-east-1b'], 'us-east-1a'],
    ['a volume outside the allowed AZs', observed(), ['us-east-1b'], undefined],
    ['a claimed volume', observed({ volume: { ...volume, claimedBy: 'r-2' } }), [], undefined],
    ['nothing catalogued', undefined, [], undefined],
  ])('pins to %s → %s', (_label, observation, allowed, expected) => {
    expect(preferredAzForVolume(observation, allowed)).toBe(expected);
  });
});
