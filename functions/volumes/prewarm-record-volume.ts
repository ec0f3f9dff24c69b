import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { recordVolume, RecordVolumeEventSchema } from '../../shared/usecases/volume-prewarm';

/** RecordVolume task of the prewarm-volume state machine. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('RecordVolume', RecordVolumeEventSchema, deps, recordVolume);

export const handler = createHandler(awsVolumeDeps);
