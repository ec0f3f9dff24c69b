import { awsCatalogStepDeps } from '../../shared/composition/record-steps';
import { stepHandler } from '../../shared/composition/task-handler';
import { type EnsureImageDeps, ensureImage, EnsureImageEventSchema } from '../../shared/usecases/ensure-image';

/** EnsureImage task of the train-run state machine: is the run's image built, or what build does it need? */
export const createHandler = (deps: EnsureImageDeps | (() => EnsureImageDeps)) => stepHandler('EnsureImage', EnsureImageEventSchema, deps, ensureImage);

export const handler = createHandler(awsCatalogStepDeps);
