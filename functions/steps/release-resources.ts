import { awsStepDeps, stepHandler } from '../../shared/composition/steps';
import type { StepDeps } from '../../shared/usecases/step-deps';
import { releaseResources } from '../../shared/usecases/release-resources';
import { WholeStateEventSchema, readExecutionState } from '../../shared/usecases/train-run-state';

/** ReleaseResources task of the train-run state machine, reachable from any state: terminate whatever the run may own and clear its task token. */
export const createHandler = (deps: StepDeps | (() => StepDeps)) =>
  stepHandler('ReleaseResources', WholeStateEventSchema, deps, (event, d) =>
    releaseResources(readExecutionState(event.state, event.executionName), d),
  );

export const handler = createHandler(awsStepDeps);
