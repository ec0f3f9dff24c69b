/**
 * Where a run's dataset volume comes from. Pure: the caller observes the catalog entry, the
 * catalogued volume and its snapshot, and this decides. Two EBS rules shape it: a volume is
 * attached to one instance at a time, and only in its own AZ. So a run takes the catalogued
 * volume only when it is free and in the run's AZ; otherwise it gets its own copy restored from
 * the snapshot in its AZ. Two runs never share a volume, and nothing attaches across AZs.
 */

/** What the caller saw of the catalogued dataset. */
export interface VolumeObservation {
  datasetUri: string;
  /** The catalogued volume: its AZ, whether EC2 has it `available` (unattached), and its claim. */
  volume?: { volumeId: string; az: string; available: boolean; claimedBy?: string };
  /** The catalogued snapshot, when EC2 still has it. */
  snapshot?: { snapshotId: string; completed: boolean };
}

export interface PlacementRequest {
  runId: string;
  /** The AZ of the run's instance. */
  instanceAz: string;
  /** AZs of the subnets the run is pinned to; empty when it is not pinned. */
  allowedAzs: readonly string[];
  /** Read the whole device once after attach (the spec's `volume.initialize`). */
  initialize: boolean;
}

export type VolumePlacement =
  /** Attach the catalogued volume itself (it is already warm: it was written, not restored). */
  | { action: 'use-catalogued'; volumeId: string; az: string; initialize: false }
  /** Restore a new volume for this run from the snapshot, in the instance's AZ. */
  | { action: 'restore'; snapshotId: string; az: string; initialize: boolean; reason: string }
  /** No way to give the run the dataset; `error` is the ASL error name. */
  | { action: 'refuse'; error: 'Volume.AzMismatch' | 'Volume.InUse' | 'Snapshot.Missing' | 'Volume.NotCatalogued'; message: string };

/** Decides how the run gets its dataset volume in `instanceAz`. */
export function decideVolumePlacement(observed: VolumeObservation | undefined, request: PlacementRequest): VolumePlacement {
  if (observed === undefined) {
    return {
      action: 'refuse',
      error: 'Volume.NotCatalogued',
      message: 'No pre-warmed volume is catalogued for this dataset; create one with POST /volumes (runctl volumes prewarm)',
    };
  }
  const { volume, snapshot } = observed;
  if (request.allowedAzs.length > 0 && !request.allowedAzs.includes(request.instanceAz)) {
    return {
      action: 'refuse',
      error: 'Volume.AzMismatch',
      message: `The instance is in ${request.instanceAz}, outside the AZs of the run's subnets (${request.allowedAzs.join(', ')})`,
    };
  }
  const free = volume !== undefined && volume.available && (volume.claimedBy === undefined || volume.claimedBy === request.runId);
  if (volume !== undefined && free && volume.az === request.instanceAz) {
    return { action: 'use-catalogued', volumeId: volume.volumeId, az: volume.az, initialize: false };
  }
  if (snapshot?.completed === true) {
    const reason =
      volume === undefined
        ? 'the catalogued volume is gone'
        : volume.az !== request.instanceAz
          ? `the catalogued volume is in ${volume.az}`
          : `the catalogued volume is in use${volume.claimedBy === undefined ? '' : ` by run ${volume.claimedBy}`}`;
    return { action: 'restore', snapshotId: snapshot.snapshotId, az: request.instanceAz, initialize: request.initialize, reason };
  }
  if (snapshot !== undefined) {
    return { action: 'refuse', error: 'Snapshot.Missing', message: `Snapshot ${snapshot.snapshotId} of ${observed.datasetUri} is not complete yet` };
  }
  if (volume === undefined) {
    return { action: 'refuse', error: 'Snapshot.Missing', message: `Neither the volume nor the snapshot of ${observed.datasetUri} exists any more; prewarm it again` };
  }
  if (volume.az !== request.instanceAz) {
    return {
      action: 'refuse',
      error: 'Volume.AzMismatch',
      message: `The only copy of ${observed.datasetUri} is volume ${volume.volumeId} in ${volume.az}, the instance is in ${request.instanceAz}, and its snapshot is missing`,
    };
  }
  return {
    action: 'refuse',
    error: 'Volume.InUse',
    message: `Volume ${volume.volumeId} of ${observed.datasetUri} is in use${volume.claimedBy === undefined ? '' : ` by run ${volume.claimedBy}`} and its snapshot is missing`,
  };
}

/**
 * The AZ to pin a run's provisioning to, so it can take the catalogued volume without a
 * restore: the volume's AZ when it is free and allowed; undefined to let capacity decide.
 */
export function preferredAzForVolume(observed: VolumeObservation | undefined, allowedAzs: readonly string[]): string | undefined {
  const volume = observed?.volume;
  if (volume === undefined || !volume.available || volume.claimedBy !== undefined) return undefined;
  if (allowedAzs.length > 0 && !allowedAzs.includes(volume.az)) return undefined;
  return volume.az;
}
