import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { cleanupBuild, CleanupBuildEventSchema } from '../../shared/usecases/image-build';

/** CleanupBuild task of the build-image state machine. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('CleanupBuild', CleanupBuildEventSchema, deps, cleanupBuild);

export const handler = createHandler(awsVolumeDeps);
