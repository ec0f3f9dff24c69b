import { awsCheckpointDeps, eventHandler } from '../../shared/composition/events';
import { RebalanceRecommendationSchema } from '../../shared/events/ec2-events';
import { onRebalance, type RebalanceDeps } from '../../shared/usecases/on-rebalance';

/** EventBridge `EC2 Instance Rebalance Recommendation`: an early checkpoint when the run asks for one. */
export const createHandler = (deps: RebalanceDeps | (() => RebalanceDeps)) =>
  eventHandler('EC2 Instance Rebalance Recommendation', RebalanceRecommendationSchema, deps, onRebalance);

export const handler = createHandler(awsCheckpointDeps);
