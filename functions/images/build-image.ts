import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { buildImage, BuildImageEventSchema } from '../../shared/usecases/image-build';

/** BuildImage task of the build-image state machine. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('BuildImage', BuildImageEventSchema, deps, buildImage);

export const handler = createHandler(awsVolumeDeps);
