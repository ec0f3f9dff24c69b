import { awsVolumeDeps, volumeStepHandler, type VolumeDeps } from '../../shared/composition/volumes';
import { recordImage, RecordImageEventSchema } from '../../shared/usecases/image-build';

/** RecordImage task of the build-image state machine. */
export const createHandler = (deps: VolumeDeps | (() => VolumeDeps)) => volumeStepHandler('RecordImage', RecordImageEventSchema, deps, recordImage);

export const handler = createHandler(awsVolumeDeps);
