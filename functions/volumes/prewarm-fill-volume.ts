import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { fillVolume, FillVolumeEventSchema } from '../../shared/usecases/volume-prewarm';

/** FillVolume task of the prewarm-volume state machine. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('FillVolume', FillVolumeEventSchema, deps, fillVolume);

export const handler = createHandler(awsVolumeDeps);
