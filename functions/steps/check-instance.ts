import { awsStepDeps, stepHandler } from '../../shared/composition/steps';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { checkInstance, CheckInstanceEventSchema } from '../../shared/usecases/check-instance';

/** CheckInstance task of the train-run state machine: one bounded look at instance and SSM agent readiness. */
export const createHandler = (deps: StepDeps | (() => StepDeps)) => stepHandler('CheckInstance', CheckInstanceEventSchema, deps, checkInstance);

export const handler = createHandler(awsStepDeps);
