import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { cleanupPrewarm, CleanupPrewarmEventSchema } from '../../shared/usecases/volume-cleanup';

/** CleanupPrewarm task of the prewarm-volume state machine. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('CleanupPrewarm', CleanupPrewarmEventSchema, deps, cleanupPrewarm);

export const handler = createHandler(awsVolumeDeps);
