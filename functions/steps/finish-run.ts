import { awsRecordStepDeps } from '../../shared/composition/record-steps';
import { stepHandler } from '../../shared/composition/task-handler';
import type { RecordStepDeps } from '../../shared/usecases/step-deps';
import { finishRun } from '../../shared/usecases/finish-run';
import { WholeStateEventSchema, readExecutionState } from '../../shared/usecases/train-run-state';

/** FinishRun task of the train-run state machine, reachable from any state: write the terminal status and its reason. */
export const createHandler = (deps: RecordStepDeps | (() => RecordStepDeps)) =>
  stepHandler('FinishRun', WholeStateEventSchema, deps, (event, d) =>
    finishRun(readExecutionState(event.state, event.executionName), d),
  );

export const handler = createHandler(awsRecordStepDeps);
