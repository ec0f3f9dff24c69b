import { awsRecordStepDeps } from '../../shared/composition/record-steps';
import { stepHandler } from '../../shared/composition/task-handler';
import type { RecordStepDeps } from '../../shared/usecases/step-deps';
import { awaitReplacement, AwaitReplacementEventSchema } from '../../shared/usecases/await-replacement';

/** AwaitReplacement task of the train-run state machine: store the wait's token while the replacement launched on the warning is being prepared. */
export const createHandler = (deps: RecordStepDeps | (() => RecordStepDeps)) =>
  stepHandler('AwaitReplacement', AwaitReplacementEventSchema, deps, awaitReplacement);

export const handler = createHandler(awsRecordStepDeps);
