import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { createPrewarmVolume, CreatePrewarmVolumeEventSchema } from '../../shared/usecases/volume-prewarm';

/** CreateVolume task of the prewarm-volume state machine. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('CreateVolume', CreatePrewarmVolumeEventSchema, deps, createPrewarmVolume);

export const handler = createHandler(awsVolumeDeps);
