import { awsStepDeps, stepHandler } from '../../shared/composition/steps';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { prefetchData, PrefetchDataEventSchema } from '../../shared/usecases/prefetch-data';

/** PrefetchData task of the train-run state machine: start the data copy through SSM, or check on it. */
export const createHandler = (deps: StepDeps | (() => StepDeps)) => stepHandler('PrefetchData', PrefetchDataEventSchema, deps, prefetchData);

export const handler = createHandler(awsStepDeps);
