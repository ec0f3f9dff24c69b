import { awsStepDeps, stepHandler } from '../../shared/composition/steps';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { finalizeArtifacts, FinalizeArtifactsEventSchema } from '../../shared/usecases/finalize-artifacts';

/** FinalizeArtifacts task of the train-run state machine: verify the outputs and final checkpoint in S3. */
export const createHandler = (deps: StepDeps | (() => StepDeps)) => stepHandler('FinalizeArtifacts', FinalizeArtifactsEventSchema, deps, finalizeArtifacts);

export const handler = createHandler(awsStepDeps);
