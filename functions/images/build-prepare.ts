import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { prepareBuild, PrepareBuildEventSchema } from '../../shared/usecases/image-build';

/** PrepareBuild task of the build-image state machine. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('PrepareBuild', PrepareBuildEventSchema, deps, prepareBuild);

export const handler = createHandler(awsVolumeDeps);
