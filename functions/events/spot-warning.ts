import { awsCheckpointDeps, eventHandler } from '../../shared/composition/events';
import { SpotInterruptionWarningSchema } from '../../shared/events/ec2-events';
import { onSpotWarning, type SpotWarningDeps } from '../../shared/usecases/on-spot-warning';

/** EventBridge `EC2 Spot Instance Interruption Warning`: checkpoint the attempt now. */
export const createHandler = (deps: SpotWarningDeps | (() => SpotWarningDeps)) =>
  eventHandler('EC2 Spot Instance Interruption Warning', SpotInterruptionWarningSchema, deps, onSpotWarning);

export const handler = createHandler(awsCheckpointDeps);
