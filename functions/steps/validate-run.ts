import { awsRecordStepDeps } from '../../shared/composition/record-steps';
import { stepHandler } from '../../shared/composition/task-handler';
import type { RecordStepDeps } from '../../shared/usecases/step-deps';
import { validateRun, ValidateRunEventSchema } from '../../shared/usecases/validate-run';

/** ValidateRun task of the train-run state machine: parse and record the run, check the code bundle. */
export const createHandler = (deps: RecordStepDeps | (() => RecordStepDeps)) => stepHandler('ValidateRun', ValidateRunEventSchema, deps, validateRun);

export const handler = createHandler(awsRecordStepDeps);
