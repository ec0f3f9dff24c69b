/**
 * Compute: where a training attempt runs. On AWS an EC2 instance driven through SSM
 * (shared/adapters/ec2-compute.ts); on the local backend a sandbox directory and a process
 * group (local/). The step handlers only ever see this port.
 */

export interface LaunchRequest {
  runId: string;
  /** 1-based attempt; `${runId}-${attempt}` is the idempotency (client) token. */
  attempt: number;
  /** Instance types in order of preference. */
  instanceTypes: readonly string[];
  /** Subnets in order of preference; empty means the default VPC's subnets. */
  subnets: readonly string[];
  /** Only launch in this AZ (the AZ of a pinned dataset volume). */
  availabilityZone?: string;
  spot: boolean;
  /** Try on-demand after spot capacity ran out everywhere. */
  onDemandFallback: boolean;
  maxSpotPriceUsd?: number;
  /** AMI id; default: the Deep Learning AMI from its public SSM parameter. */
  ami?: string;
  instanceProfile?: string;
  rootVolumeGiB: number;
  /** User tags; `runctl:run`, `runctl:attempt` and `runctl:stack` are added by the adapter. */
  tags: Readonly<Record<string, string>>;
  /**
   * One node of a multi-node run launched alone (the replacement of a lost node): client token
   * `${runId}-${attempt}-r${rank}` (plus the walk's index), tag `runctl:rank`.
   */
  rank?: number;
  /** Only launch in this subnet (a replacement node joins its fleet's subnet). */
  subnetId?: string;
  /** The run's network for its nodes (NodeNetworks.ensure): placement group and security group. */
  network?: RunNetwork;
}

/** A multi-node launch: `count` instances of one type in one subnet, all or none. */
export interface LaunchNodesRequest extends Omit<LaunchRequest, 'rank'> {
  count: number;
}

/** One capacity refusal met while walking the type/subnet list. */
export interface CapacityMiss {
  instanceType: string;
  subnetId?: string;
  spot: boolean;
  /** AWS error code, e.g. InsufficientInstanceCapacity. */
  code: string;
}

export interface LaunchedInstance {
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  subnetId?: string;
  spot: boolean;
  launchedAt: string;
  /** Capacity refusals met before this launch succeeded. */
  misses: CapacityMiss[];
  /** The private IPv4 address (rank 0's is the rendezvous address); 127.0.0.1 on the local backend. */
  privateIp?: string;
  /** Its rank, for a node of a multi-node run (tag `runctl:rank`). */
  rank?: number;
}

export type InstanceLifecycleState =
  | 'pending'
  | 'running'
  | 'shutting-down'
  | 'terminated'
  | 'stopping'
  | 'stopped'
  /** The provider no longer knows the instance. */
  | 'gone';

/** Every state but pending and running: the instance is on its way out, or already gone, and will not train. */
export function instanceGone(state: InstanceLifecycleState): boolean {
  return state !== 'pending' && state !== 'running';
}

export interface InstanceReadiness {
  state: InstanceLifecycleState;
  /** EC2 running and the SSM agent reports Online. */
  ready: boolean;
  agentOnline: boolean;
}

export type CommandStatus = 'Pending' | 'InProgress' | 'Delayed' | 'Success' | 'Cancelled' | 'TimedOut' | 'Failed';

export interface CommandResult {
  status: CommandStatus;
  /** Exit code when the command finished. */
  exitCode?: number;
  /** First 24,000 characters at most (SSM's limit); long output goes to S3. */
  stdout: string;
  stderr: string;
}

export interface TaggedInstance {
  instanceId: string;
  runId: string;
  attempt: number;
  state: InstanceLifecycleState;
  launchedAt: string;
  instanceType: string;
  spot: boolean;
  /** `runctl:helper` tag: a prewarm or image-build helper, not a training attempt. */
  helper?: string;
  /** `runctl:rank` tag: a node of a multi-node run. */
  rank?: number;
}

export interface Compute {
  /** Launches one instance, walking types/subnets on capacity errors; throws CapacityUnavailableError. */
  launch(request: LaunchRequest): Promise<LaunchedInstance>;
  /**
   * Launches the `count` nodes of a multi-node attempt: every try of the walk (type, subnet,
   * market) asks for all of them at once (RunInstances MinCount = MaxCount = count), so a try
   * either holds the whole fleet or nothing. Returns them in rank order (launch index), each
   * tagged `runctl:rank`. Idempotent per attempt like `launch`; throws CapacityUnavailableError.
   */
  launchNodes(request: LaunchNodesRequest): Promise<LaunchedInstance[]>;
  /**
   * Re-tags instances kept from an earlier attempt of a multi-node run with the attempt they now
   * serve (`runctl:attempt`), so the EC2 event handlers find the live attempt by the tag.
   */
  tagAttempt(instanceIds: readonly string[], attempt: number): Promise<void>;
  /** Lifecycle and SSM agent state of an instance. */
  readiness(instanceId: string): Promise<InstanceReadiness>;
  /** The lifecycle state of each instance, in one call: `gone` for one the provider no longer knows. */
  instanceStates(instanceIds: readonly string[]): Promise<Map<string, InstanceLifecycleState>>;
  /** Terminates an instance; an instance already gone is success. */
  terminate(instanceId: string): Promise<void>;
  /** Runs a bash script on the instance; returns the command id. */
  sendCommand(instanceId: string, script: string, options?: { timeoutSeconds?: number; comment?: string }): Promise<string>;
  /** Status and output of a command sent with sendCommand. */
  commandResult(instanceId: string, commandId: string): Promise<CommandResult>;
  /** This stack's instances tagged `runctl:run` that are not terminated (for the reconciler); never another stack's. */
  listTaggedInstances(): Promise<TaggedInstance[]>;
}

/** Where a multi-node run's nodes meet: created for the run, deleted when it ends. */
export interface RunNetwork {
  /** A cluster placement group (absent where the instance type cannot use one). */
  placementGroup?: string;
  /** A security group letting only the run's own nodes reach each other (every TCP port). */
  securityGroupId?: string;
}

/**
 * The per-run network of multi-node runs. On AWS: a cluster placement group and a security group
 * in the subnets' VPC, both tagged `runctl:run` and `runctl:stack`, named after the run so a
 * retried step finds them. On the local backend every node is on loopback: nothing to create.
 */
export interface NodeNetworks {
  /** Creates the run's network (idempotent: a second call returns the same). */
  ensure(runId: string, at: { subnets: readonly string[]; instanceType: string }): Promise<RunNetwork>;
  /**
   * Deletes the run's placement group and security group; what is already gone is success. A
   * group still in use by instances that are shutting down is retried within the call
   * (bounded), then left for the reconciler with a ConflictError.
   */
  release(runId: string): Promise<void>;
  /** Run ids of this stack's run networks that still exist (for the reconciler). */
  listRunNetworks(): Promise<string[]>;
}
