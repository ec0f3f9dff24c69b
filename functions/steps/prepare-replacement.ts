import { awsStepDeps, stepHandler } from '../../shared/composition/steps';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { prepareReplacement, PrepareReplacementEventSchema } from '../../shared/usecases/prepare-replacement';

/** The prepare-replacement state machine's one task: launch, check, copy data to, or abandon the next attempt's instance. */
export const createHandler = (deps: StepDeps | (() => StepDeps)) =>
  stepHandler('PrepareReplacement', PrepareReplacementEventSchema, deps, prepareReplacement);

export const handler = createHandler(awsStepDeps);
