import { awsStepDeps, stepHandler } from '../../shared/composition/steps';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { launchTraining, LaunchTrainingEventSchema } from '../../shared/usecases/launch-training';

/** LaunchTraining task of the train-run state machine: store the task token and start the agent. */
export const createHandler = (deps: StepDeps | (() => StepDeps)) => stepHandler('LaunchTraining', LaunchTrainingEventSchema, deps, launchTraining);

export const handler = createHandler(awsStepDeps);
