import { awsPrepareReplacementDeps, stepHandler } from '../../shared/composition/steps';
import { prepareReplacement, PrepareReplacementEventSchema, type PrepareReplacementDeps } from '../../shared/usecases/prepare-replacement';

/** The prepare-replacement state machine's one task: launch, check, copy data to, or abandon the next attempt's instance. */
export const createHandler = (deps: PrepareReplacementDeps | (() => PrepareReplacementDeps)) =>
  stepHandler('PrepareReplacement', PrepareReplacementEventSchema, deps, prepareReplacement);

export const handler = createHandler(awsPrepareReplacementDeps);
