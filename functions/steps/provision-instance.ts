import { awsStepDeps, stepHandler } from '../../shared/composition/steps';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { provisionInstance, ProvisionInstanceEventSchema } from '../../shared/usecases/provision-instance';

/** ProvisionInstance task of the train-run state machine: launch the attempt's instance or report a capacity wait. */
export const createHandler = (deps: StepDeps | (() => StepDeps)) => stepHandler('ProvisionInstance', ProvisionInstanceEventSchema, deps, provisionInstance);

export const handler = createHandler(awsStepDeps);
