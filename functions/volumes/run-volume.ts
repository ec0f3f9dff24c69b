import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { runVolume, RunVolumeEventSchema } from '../../shared/usecases/volume-run';

/** AttachVolume task of the train-run state machine (attach, check the mount) and the release of the run's volumes. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('RunVolume', RunVolumeEventSchema, deps, runVolume);

export const handler = createHandler(awsVolumeDeps);
