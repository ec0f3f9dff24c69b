import { awsRecordStepDeps } from '../../shared/composition/record-steps';
import { stepHandler } from '../../shared/composition/task-handler';
import type { RecordStepDeps } from '../../shared/usecases/step-deps';
import { decideRecovery, DecideRecoveryEventSchema } from '../../shared/usecases/decide-recovery';

/** DecideRecovery task of the train-run state machine: apply the recovery policy to a failed attempt. */
export const createHandler = (deps: RecordStepDeps | (() => RecordStepDeps)) => stepHandler('DecideRecovery', DecideRecoveryEventSchema, deps, decideRecovery);

export const handler = createHandler(awsRecordStepDeps);
