import { awsStepDeps, stepHandler } from '../../shared/composition/steps';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { validateRun, ValidateRunEventSchema } from '../../shared/usecases/validate-run';

/** ValidateRun task of the train-run state machine: parse and record the run, check the code bundle. */
export const createHandler = (deps: StepDeps | (() => StepDeps)) => stepHandler('ValidateRun', ValidateRunEventSchema, deps, validateRun);

export const handler = createHandler(awsStepDeps);
