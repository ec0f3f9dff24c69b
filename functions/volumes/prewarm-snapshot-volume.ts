import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { snapshotVolume, SnapshotVolumeEventSchema } from '../../shared/usecases/volume-prewarm';

/** SnapshotVolume task of the prewarm-volume state machine. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('SnapshotVolume', SnapshotVolumeEventSchema, deps, snapshotVolume);

export const handler = createHandler(awsVolumeDeps);
