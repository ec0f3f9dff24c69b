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
}

export interface Compute {
  /** Launches one instance, walking types/subnets on capacity errors; throws CapacityUnavailableError. */
  launch(request: LaunchRequest): Promise<LaunchedInstance>;
  /** Lifecycle and SSM agent state of an instance. */
  readiness(instanceId: string): Promise<InstanceReadiness>;
  /** Terminates an instance; an instance already gone is success. */
  terminate(instanceId: string): Promise<void>;
  /** Runs a bash script on the instance; returns the command id. */
  sendCommand(instanceId: string, script: string, options?: { timeoutSeconds?: number; comment?: string }): Promise<string>;
  /** Status and output of a command sent with sendCommand. */
  commandResult(instanceId: string, commandId: string): Promise<CommandResult>;
  /** This stack's instances tagged `runctl:run` that are not terminated (for the reconciler); never another stack's. */
  listTaggedInstances(): Promise<TaggedInstance[]>;
}
