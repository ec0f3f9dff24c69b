import { awsStepDeps, stepHandler } from '../../shared/composition/steps';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { decideRecovery, DecideRecoveryEventSchema } from '../../shared/usecases/decide-recovery';

/** DecideRecovery task of the train-run state machine: apply the recovery policy to a failed attempt. */
export const createHandler = (deps: StepDeps | (() => StepDeps)) => stepHandler('DecideRecovery', DecideRecoveryEventSchema, deps, decideRecovery);

export const handler = createHandler(awsStepDeps);
