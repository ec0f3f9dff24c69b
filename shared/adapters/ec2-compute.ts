/**
 * Compute on AWS: one EC2 instance per attempt, driven through SSM Run Command.
 *
 * Every AWS call here is safe to repeat: RunInstances carries a deterministic client token and
 * a launch first adopts an instance already tagged for the same attempt, so a Lambda retried by
 * the state machine never leaves a second instance behind.
 */
import { createHash } from 'node:crypto';
import {
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  paginateDescribeInstances,
  type EC2Client,
  type Filter,
  type Instance,
  type RunInstancesCommandInput,
  type Tag,
  _InstanceType,
} from '@aws-sdk/client-ec2';
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { z } from 'zod';
import {
  AwsCallFailedError,
  CapacityUnavailableError,
  ConflictError,
  InstanceNotReadyError,
  PrecheckFailedError,
  RunInvalidError,
} from '../errors';
import type {
  CapacityMiss,
  CommandResult,
  Compute,
  InstanceLifecycleState,
  InstanceReadiness,
  LaunchRequest,
  LaunchedInstance,
  TaggedInstance,
} from '../ports/compute';
import { STACK_TAG } from '../ports/stack-tag';
import { awsErrorCode, translateAwsError, withThrottleRetry, type ThrottleRetryOptions } from './aws-errors';
import { DEFAULT_DLAMI_PARAMETER, amiRootDeviceName, resolveAmiFromParameter } from './dlami';

export const RUN_TAG = 'runctl:run';
export const ATTEMPT_TAG = 'runctl:attempt';

/** Refusals that mean "not this type here, now": the walk moves on to the next try. */
const CAPACITY_CODES = new Set([
  'InsufficientInstanceCapacity',
  'MaxSpotInstanceCountExceeded',
  'SpotMaxPriceTooLow',
  'Unsupported',
  'InstanceLimitExceeded',
  'VcpuLimitExceeded',
]);

const LIVE_STATES = ['pending', 'running', 'shutting-down', 'stopping', 'stopped'];
const InstanceState = z.enum(['pending', 'running', 'shutting-down', 'terminated', 'stopping', 'stopped']);
const CommandStatus = z.enum(['Pending', 'InProgress', 'Delayed', 'Success', 'Cancelled', 'TimedOut', 'Failed', 'Cancelling']);
const FINISHED = new Set(['Success', 'Cancelled', 'TimedOut', 'Failed']);

/** SSM limits: a command's Comment is at most 100 characters; TimeoutSeconds is 30 s to 30 days. */
const MAX_COMMENT = 100;
const MIN_TIMEOUT_SECONDS = 30;
const MAX_TIMEOUT_SECONDS = 2_592_000;
/** EC2 accepts client tokens of at most 64 ASCII characters. */
const MAX_CLIENT_TOKEN = 64;

export interface Ec2ComputeOptions {
  ec2: EC2Client;
  ssm: SSMClient;
  /** This stack's name: the `runctl:stack` tag of every launch, and the filter of every listing. */
  stack: string;
  /** Used when a request names no subnet; else the default VPC's default-for-az subnets. */
  defaultSubnets?: string[];
  defaultInstanceProfile?: string;
  /** SSM parameter holding the AMI id used when a request names none. */
  amiParameter?: string;
  securityGroupIds?: string[];
  now?: () => Date;
  /** Backoff for throttled calls, on top of the SDK's own retries. */
  throttleRetry?: ThrottleRetryOptions;
}

interface Placement {
  subnetId: string;
  availabilityZone?: string;
}

/**
 * Client token of the `index`-th try of an attempt. EC2 binds a token to the parameters of its
 * first call, so each (type, subnet, market) try needs its own; deriving it from the position in
 * a deterministic walk lets a retried Lambda replay exactly the same tokens.
 */
export function clientToken(runId: string, attempt: number, index: number): string {
  const token = index === 0 ? `${runId}-${attempt}` : `${runId}-${attempt}-${index}`;
  return token.length <= MAX_CLIENT_TOKEN ? token : createHash('sha256').update(token).digest('hex');
}

export class Ec2Compute implements Compute {
  private readonly ec2: EC2Client;
  private readonly ssm: SSMClient;
  private readonly options: Ec2ComputeOptions;
  private readonly retry: ThrottleRetryOptions;
  private readonly now: () => Date;

  constructor(options: Ec2ComputeOptions) {
    this.ec2 = options.ec2;
    this.ssm = options.ssm;
    this.options = options;
    this.retry = options.throttleRetry ?? { attempts: 3, baseMs: 250 };
    this.now = options.now ?? (() => new Date());
  }

  async launch(request: LaunchRequest): Promise<LaunchedInstance> {
    checkTagKeys(request.tags);
    const instanceTypes = knownInstanceTypes(request.instanceTypes);
    const adopted = await this.findAttemptInstance(request.runId, request.attempt);
    if (adopted !== undefined) return adopted;

    const imageId = request.ami ?? (await this.call(() => resolveAmiFromParameter(this.ssm, this.amiParameter()), 'GetParameter'));
    const rootDevice = await this.call(() => amiRootDeviceName(this.ec2, imageId), 'DescribeImages');
    const placements = await this.placements(request);
    const markets = request.spot ? (request.onDemandFallback ? [true, false] : [true]) : [false];

    const misses: CapacityMiss[] = [];
    let index = 0;
    for (const spot of markets) {
      for (const instanceType of instanceTypes) {
        for (const placement of placements) {
          const token = clientToken(request.runId, request.attempt, index);
          index += 1;
          const input = this.runInstancesInput(request, { imageId, rootDevice, instanceType, placement, spot, token });
          try {
            const output = await withThrottleRetry(() => this.ec2.send(new RunInstancesCommand(input)), this.retry);
            const instance = output.Instances?.[0];
            if (instance?.InstanceId === undefined) {
              throw new AwsCallFailedError(`RunInstances returned no instance for client token ${token}`);
            }
            return this.launched(instance, { instanceType, placement, spot, misses });
          } catch (error) {
            const code = awsErrorCode(error);
            if (code !== undefined && CAPACITY_CODES.has(code)) {
              misses.push({ instanceType, subnetId: placement.subnetId, spot, code });
              continue;
            }
            if (code === 'IdempotentParameterMismatch') {
              // An earlier call with this token launched with other parameters (the "latest" AMI
              // moved, or the spec changed between retries): that instance, if alive, is ours.
              const existing = await this.findAttemptInstance(request.runId, request.attempt);
              if (existing !== undefined) return existing;
              throw new ConflictError(
                `Client token ${token} was already used for a launch with other parameters, and no live ` +
                  `instance of run ${request.runId} attempt ${request.attempt} exists; start a new attempt`,
                { cause: error },
              );
            }
            throw translateAwsError(error, `RunInstances ${instanceType} in ${placement.subnetId}`);
          }
        }
      }
    }
    const tried = misses
      .map((m) => `${m.instanceType} ${m.spot ? 'spot' : 'on-demand'} in ${m.subnetId ?? 'any subnet'} (${m.code})`)
      .join(', ');
    throw new CapacityUnavailableError(
      `No capacity for run ${request.runId} attempt ${request.attempt}; tried ${tried}`,
    );
  }

  async readiness(instanceId: string): Promise<InstanceReadiness> {
    const gone: InstanceReadiness = { state: 'gone', ready: false, agentOnline: false };
    let stateName: string | undefined;
    try {
      const output = await withThrottleRetry(
        () => this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
        this.retry,
      );
      stateName = output.Reservations?.[0]?.Instances?.[0]?.State?.Name;
    } catch (error) {
      if (awsErrorCode(error) === 'InvalidInstanceID.NotFound') return gone;
      throw translateAwsError(error, `DescribeInstances ${instanceId}`);
    }
    if (stateName === undefined) return gone;
    const state = parseState(stateName);
    // SSM is asked only about a running instance: no agent answers from any other state.
    if (state !== 'running') return { state, ready: false, agentOnline: false };
    const agentOnline = await this.agentOnline(instanceId);
    return { state, ready: agentOnline, agentOnline };
  }

  async terminate(instanceId: string): Promise<void> {
    try {
      await withThrottleRetry(() => this.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })), this.retry);
    } catch (error) {
      if (awsErrorCode(error) === 'InvalidInstanceID.NotFound') return;
      throw translateAwsError(error, `TerminateInstances ${instanceId}`);
    }
  }

  async sendCommand(
    instanceId: string,
    script: string,
    options: { timeoutSeconds?: number; comment?: string } = {},
  ): Promise<string> {
    const timeout = Math.min(MAX_TIMEOUT_SECONDS, Math.max(MIN_TIMEOUT_SECONDS, Math.ceil(options.timeoutSeconds ?? 3600)));
    const command = new SendCommandCommand({
      InstanceIds: [instanceId],
      DocumentName: 'AWS-RunShellScript',
      Parameters: { commands: [script], executionTimeout: [String(timeout)] },
      TimeoutSeconds: timeout,
      Comment: options.comment?.slice(0, MAX_COMMENT),
    });
    let commandId: string | undefined;
    try {
      // A throttled SendCommand was rejected, not run, so repeating it cannot run the script twice.
      const output = await withThrottleRetry(() => this.ssm.send(command), this.retry);
      commandId = output.Command?.CommandId;
    } catch (error) {
      if (awsErrorCode(error) === 'InvalidInstanceId') {
        throw new InstanceNotReadyError(
          `SSM cannot reach instance ${instanceId}: it is not running or its agent is not online`,
          { cause: error },
        );
      }
      throw translateAwsError(error, `SendCommand to ${instanceId}`);
    }
    if (commandId === undefined) throw new AwsCallFailedError(`SendCommand to ${instanceId} returned no command id`);
    return commandId;
  }

  async commandResult(instanceId: string, commandId: string): Promise<CommandResult> {
    let output;
    try {
      output = await withThrottleRetry(
        () => this.ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId })),
        this.retry,
      );
    } catch (error) {
      // The invocation is registered a moment after SendCommand returns.
      if (awsErrorCode(error) === 'InvocationDoesNotExist') return { status: 'Pending', stdout: '', stderr: '' };
      throw translateAwsError(error, `GetCommandInvocation ${commandId} on ${instanceId}`);
    }
    const parsed = CommandStatus.safeParse(output.Status);
    if (!parsed.success) {
      throw new AwsCallFailedError(`Command ${commandId} on ${instanceId} has an unknown status ${String(output.Status)}`);
    }
    // Cancelling is not an outcome yet; report it as still running until SSM says Cancelled.
    const status = parsed.data === 'Cancelling' ? 'InProgress' : parsed.data;
    const code = output.ResponseCode;
    return {
      status,
      exitCode: FINISHED.has(status) && code !== undefined && code >= 0 ? code : undefined,
      stdout: output.StandardOutputContent ?? '',
      stderr: output.StandardErrorContent ?? '',
    };
  }

  async listTaggedInstances(): Promise<TaggedInstance[]> {
    const filters: Filter[] = [
      { Name: 'tag-key', Values: [RUN_TAG] },
      // Another stack's instances are never listed, so never judged orphans here.
      this.stackFilter(),
      { Name: 'instance-state-name', Values: LIVE_STATES },
    ];
    const instances = await this.describeAll(filters, `DescribeInstances tagged runctl:run of ${this.options.stack}`);
    return instances.flatMap((instance) => {
      const runId = tagValue(instance.Tags, RUN_TAG);
      if (instance.InstanceId === undefined || runId === undefined) return [];
      const attempt = Number(tagValue(instance.Tags, ATTEMPT_TAG));
      return [
        {
          instanceId: instance.InstanceId,
          runId,
          // 0 when the tag is missing or unreadable: the reconciler still sees the instance.
          attempt: Number.isInteger(attempt) && attempt > 0 ? attempt : 0,
          state: parseState(instance.State?.Name ?? 'pending'),
          launchedAt: (instance.LaunchTime ?? this.now()).toISOString(),
          instanceType: instance.InstanceType ?? 'unknown',
          spot: instance.InstanceLifecycle === 'spot',
          helper: tagValue(instance.Tags, HELPER_TAG),
        },
      ];
    });
  }

  private amiParameter(): string {
    return this.options.amiParameter ?? DEFAULT_DLAMI_PARAMETER;
  }

  /** Runs a helper that translates its own errors, adding backoff when it was throttled. */
  private call<T>(fn: () => Promise<T>, operation: string): Promise<T> {
    return withThrottleRetry(fn, this.retry).catch((error: unknown) => {
      throw translateAwsError(error, operation);
    });
  }

  /** The live instance a previous call launched for this attempt, if any. */
  private async findAttemptInstance(runId: string, attempt: number): Promise<LaunchedInstance | undefined> {
    const [instance] = await this.describeAll(
      [
        { Name: `tag:${RUN_TAG}`, Values: [runId] },
        { Name: `tag:${ATTEMPT_TAG}`, Values: [String(attempt)] },
        this.stackFilter(),
        { Name: 'instance-state-name', Values: ['pending', 'running'] },
      ],
      `DescribeInstances for run ${runId} attempt ${attempt}`,
    );
    if (instance?.InstanceId === undefined) return undefined;
    return this.launched(instance, {
      instanceType: instance.InstanceType ?? 'unknown',
      placement: { subnetId: instance.SubnetId ?? '' },
      spot: instance.InstanceLifecycle === 'spot',
      misses: [],
    });
  }

  private stackFilter(): Filter {
    return { Name: `tag:${STACK_TAG}`, Values: [this.options.stack] };
  }

  private async describeAll(filters: Filter[], operation: string): Promise<Instance[]> {
    const collect = async (): Promise<Instance[]> => {
      const instances: Instance[] = [];
      for await (const page of paginateDescribeInstances({ client: this.ec2 }, { Filters: filters })) {
        for (const reservation of page?.Reservations ?? []) instances.push(...(reservation.Instances ?? []));
      }
      return instances;
    };
    try {
      return await withThrottleRetry(collect, this.retry);
    } catch (error) {
      throw translateAwsError(error, operation);
    }
  }

  /**
   * Subnets to try, in order: the request's, else the configured defaults, else the default
   * VPC's default-for-az subnets sorted by AZ (a stable order keeps client tokens stable).
   */
  private async placements(request: LaunchRequest): Promise<Placement[]> {
    const wanted = request.subnets.length > 0 ? request.subnets : (this.options.defaultSubnets ?? []);
    const zone = request.availabilityZone;
    let placements: Placement[];
    if (wanted.length === 0) {
      const output = await this.call(
        () => this.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] })),
        'DescribeSubnets default-for-az',
      );
      placements = (output.Subnets ?? [])
        .flatMap((s) => (s.SubnetId === undefined ? [] : [{ subnetId: s.SubnetId, availabilityZone: s.AvailabilityZone }]))
        .sort((a, b) => (a.availabilityZone ?? '').localeCompare(b.availabilityZone ?? ''));
      if (placements.length === 0) {
        throw new PrecheckFailedError('No subnet was given and this region has no default VPC subnets; configure subnets');
      }
    } else if (zone === undefined) {
      return wanted.map((subnetId) => ({ subnetId }));
    } else {
      const output = await this.call(
        () => this.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [...wanted] })),
        `DescribeSubnets ${wanted.join(',')}`,
      );
      const zones = new Map((output.Subnets ?? []).map((s) => [s.SubnetId, s.AvailabilityZone]));
      placements = wanted.map((subnetId) => ({ subnetId, availabilityZone: zones.get(subnetId) }));
    }
    if (zone === undefined) return placements;
    const inZone = placements.filter((p) => p.availabilityZone === zone);
    if (inZone.length === 0) {
      throw new PrecheckFailedError(
        `None of the subnets ${placements.map((p) => p.subnetId).join(', ')} is in ${zone}, the AZ the run is pinned to`,
      );
    }
    return inZone;
  }

  private runInstancesInput(
    request: LaunchRequest,
    t: { imageId: string; rootDevice: string; instanceType: _InstanceType; placement: Placement; spot: boolean; token: string },
  ): RunInstancesCommandInput {
    const tags = launchTags(request, this.options.stack);
    const profile = request.instanceProfile ?? this.options.defaultInstanceProfile;
    const groups = this.options.securityGroupIds ?? [];
    return {
      ClientToken: t.token,
      ImageId: t.imageId,
      InstanceType: t.instanceType,
      MinCount: 1,
      MaxCount: 1,
      SubnetId: t.placement.subnetId,
      SecurityGroupIds: groups.length > 0 ? groups : undefined,
      IamInstanceProfile: profile === undefined ? undefined : { Name: profile },
      InstanceMarketOptions: t.spot
        ? {
            MarketType: 'spot',
            SpotOptions: {
              SpotInstanceType: 'one-time',
              InstanceInterruptionBehavior: 'terminate',
              MaxPrice: request.maxSpotPriceUsd === undefined ? undefined : String(request.maxSpotPriceUsd),
            },
          }
        : undefined,
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', InstanceMetadataTags: 'enabled' },
      // A shutdown from inside (the agent, a user's `poweroff`) must not leave a stopped instance billing its volume.
      InstanceInitiatedShutdownBehavior: 'terminate',
      BlockDeviceMappings: [
        { DeviceName: t.rootDevice, Ebs: { VolumeSize: request.rootVolumeGiB, VolumeType: 'gp3', DeleteOnTermination: true } },
      ],
      TagSpecifications: [
        { ResourceType: 'instance', Tags: tags },
        { ResourceType: 'volume', Tags: tags },
      ],
    };
  }

  private launched(
    instance: Instance,
    t: { instanceType: string; placement: Placement; spot: boolean; misses: CapacityMiss[] },
  ): LaunchedInstance {
    const subnetId = instance.SubnetId ?? t.placement.subnetId;
    return {
      instanceId: instance.InstanceId ?? '',
      instanceType: instance.InstanceType ?? t.instanceType,
      availabilityZone: instance.Placement?.AvailabilityZone ?? t.placement.availabilityZone ?? '',
      subnetId: subnetId === '' ? undefined : subnetId,
      spot: t.spot,
      launchedAt: (instance.LaunchTime ?? this.now()).toISOString(),
      misses: [...t.misses],
    };
  }

  private async agentOnline(instanceId: string): Promise<boolean> {
    try {
      const output = await withThrottleRetry(
        () =>
          this.ssm.send(
            new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [instanceId] }] }),
          ),
        this.retry,
      );
      const info = (output.InstanceInformationList ?? []).find((i) => i.InstanceId === instanceId);
      return info?.PingStatus === 'Online';
    } catch (error) {
      throw translateAwsError(error, `DescribeInstanceInformation ${instanceId}`);
    }
  }
}

function parseState(name: string): InstanceLifecycleState {
  const parsed = InstanceState.safeParse(name);
  if (!parsed.success) throw new AwsCallFailedError(`EC2 reported an unknown instance state ${name}`);
  return parsed.data;
}

const INSTANCE_TYPES: ReadonlySet<string> = new Set(Object.values(_InstanceType));

function isInstanceType(value: string): value is _InstanceType {
  return INSTANCE_TYPES.has(value);
}

/** The requested types, refused up front when one is unknown to EC2 (a typo would else read as "no capacity"). */
function knownInstanceTypes(requested: readonly string[]): _InstanceType[] {
  const unknown = requested.filter((type) => !isInstanceType(type));
  if (unknown.length > 0 || requested.length === 0) {
    throw new RunInvalidError(
      requested.length === 0 ? 'No instance type was given' : `Unknown instance types: ${unknown.join(', ')}`,
      unknown.map((type) => ({ path: 'instance.types', message: `${type} is not an EC2 instance type` })),
    );
  }
  return requested.filter(isInstanceType);
}

/**
 * The tags of a launch, on the instance and its root volume alike. runctl's own come after the
 * user's, so a user tag can never pose as another run's (or another stack's) instance; the IAM
 * conditions on RunInstances require `runctl:run` and this stack's `runctl:stack`.
 */
export function launchTags(request: Pick<LaunchRequest, 'runId' | 'attempt' | 'tags'>, stack: string): Tag[] {
  return Object.entries({
    Name: `runctl-${request.runId}-${request.attempt}`,
    ...request.tags,
    [RUN_TAG]: request.runId,
    [ATTEMPT_TAG]: String(request.attempt),
    [STACK_TAG]: stack,
  }).map(([Key, Value]) => ({ Key, Value }));
}

/** Tag of prewarm and image-build helper instances (see shared/usecases/volume-helper.ts). */
const HELPER_TAG = 'runctl:helper';

function tagValue(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((tag) => tag.Key === key)?.Value;
}

/** With instance metadata tags enabled, EC2 refuses tag keys containing '/' or made of dots only. */
function checkTagKeys(tags: Readonly<Record<string, string>>): void {
  const bad = Object.keys(tags).filter((key) => key.includes('/') || /^\.+$/.test(key));
  if (bad.length > 0) {
    throw new RunInvalidError(
      `Tag keys ${bad.join(', ')} cannot be used: instance tags are exposed in instance metadata, which forbids '/' and '.'/'..'`,
      bad.map((key) => ({ path: `tags.${key}`, message: "must not contain '/' or be made of dots only" })),
    );
  }
}
