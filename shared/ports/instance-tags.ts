/**
 * Which run an instance belongs to, read from the tags runctl puts on it at launch. The event
 * handlers get nothing but an instance id from EC2, and this is the one call they make to EC2.
 */

/** The run and attempt an instance was launched for. */
export interface InstanceRun {
  runId: string;
  attempt: number;
  /**
   * The run's owner, when the instance carries the `runctl:owner` tag. It lets the spot-warning
   * handler write the owner-keyed status index without reading the record first.
   */
  owner?: string;
  /** How many nodes the run has (the `runctl:nodes` tag, present above one): the others get the same signal. */
  nodes?: number;
}

/** Tag on every instance of a multi-node run: its node count. */
export const NODES_TAG = 'runctl:nodes';

export interface InstanceTags {
  /** The run of an instance from its runctl tags; undefined for an instance runctl did not launch. */
  runOf(instanceId: string): Promise<InstanceRun | undefined>;
}
