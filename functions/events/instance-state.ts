import { awsInstanceStateDeps, eventHandler } from '../../shared/composition/events';
import { InstanceStateChangeSchema } from '../../shared/events/ec2-events';
import { onInstanceState, type InstanceStateDeps } from '../../shared/usecases/on-instance-state';

/** EventBridge `EC2 Instance State-change Notification`: fail a lost attempt's wait with Instance.Lost. */
export const createHandler = (deps: InstanceStateDeps | (() => InstanceStateDeps)) =>
  eventHandler('EC2 Instance State-change Notification', InstanceStateChangeSchema, deps, onInstanceState);

export const handler = createHandler(awsInstanceStateDeps);
