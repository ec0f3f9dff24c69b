import { awsRecordStepDeps } from '../../shared/composition/record-steps';
import { stepHandler } from '../../shared/composition/task-handler';
import type { RecordStepDeps } from '../../shared/usecases/step-deps';
import { finalizeArtifacts, FinalizeArtifactsEventSchema } from '../../shared/usecases/finalize-artifacts';

/** FinalizeArtifacts task of the train-run state machine: verify the outputs and final checkpoint in S3. */
export const createHandler = (deps: RecordStepDeps | (() => RecordStepDeps)) => stepHandler('FinalizeArtifacts', FinalizeArtifactsEventSchema, deps, finalizeArtifacts);

export const handler = createHandler(awsRecordStepDeps);
