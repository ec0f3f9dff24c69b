import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { helperInstance, HelperInstanceEventSchema } from '../../shared/usecases/volume-helper';

/** HelperInstance task of prewarm-volume and build-image: launch, check or terminate the helper/builder instance. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('HelperInstance', HelperInstanceEventSchema, deps, helperInstance);

export const handler = createHandler(awsVolumeDeps);
