/**
 * Compute on AWS: one EC2 instance per attempt (N for a multi-node run), driven through SSM Run
 * Command.
 *
 * Every AWS call here is safe to repeat: RunInstances carries a deterministic client token and
 * a launch first adopts what is already tagged for the same attempt, so a Lambda retried by the
 * state machine never leaves a second instance (or a second fleet) behind.
 */
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  paginateDescribeInstances,
  type EC2Client,
  type Filter,
  type Instance,
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
  InstanceLostError,
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
  LaunchNodesRequest,
  LaunchRequest,
  LaunchedInstance,
  TaggedInstance,
} from '../ports/compute';
import { STACK_TAG } from '../ports/stack-tag';
import { awsErrorCode, translateAwsError, withThrottleRetry, type ThrottleRetryOptions } from './aws-errors';
import { Ec2InstanceStates, parseState } from './ec2-instance-states';
import { DEFAULT_DLAMI_PARAMETER, amiRootDeviceName, resolveAmiFromParameter } from './dlami';
import {
  ATTEMPT_TAG,
  CAPACITY_CODES,
  HELPER_TAG,
  RANK_TAG,
  RUN_TAG,
  checkTagKeys,
  knownInstanceTypes,
  runInstancesInput,
  taggedRank,
  tagValue,
  type Placement,
} from './ec2-launch';
import { clientToken } from './ec2-launch';

export { ATTEMPT_TAG, RANK_TAG, RUN_TAG, clientToken, launchTags } from './ec2-launch';

const LIVE_STATES = ['pending', 'running', 'shutting-down', 'stopping', 'stopped'];
/** States of an instance a retried launch may take as its own: anything else is on its way out. */
const ADOPTABLE_STATES = ['pending', 'running'];
const CommandStatus = z.enum(['Pending', 'InProgress', 'Delayed', 'Success', 'Cancelled', 'TimedOut', 'Failed', 'Cancelling']);
const FINISHED = new Set(['Success', 'Cancelled', 'TimedOut', 'Failed']);

/** SSM limits: a command's Comment is at most 100 characters; TimeoutSeconds is 30 s to 30 days. */
const MAX_COMMENT = 100;
const MIN_TIMEOUT_SECONDS = 30;
const MAX_TIMEOUT_SECONDS = 2_592_000;
/**
 * EC2 is eventually consistent: an instance RunInstances just returned may be unknown to the next
 * call for a moment (InvalidInstanceID.NotFound). Tagging a new fleet's ranks tries this often.
 */
const NEW_INSTANCE_TRIES = 5;

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

/** A try that launched, and what the walk met before it. */
interface LaunchedTry {
  instanceType: string;
  placement: Placement;
  spot: boolean;
  misses: CapacityMiss[];
  token: string;
}

/** How one launch walks: instances per try, token scope, and what a retried call adopts. */
interface Walk<T> {
  count: number;
  scope?: string;
  /** What an earlier call of this launch left alive (checked first, and on IdempotentParameterMismatch). */
  adopt: () => Promise<T | undefined>;
  /** The result of the try that launched `count` instances. */
  accept: (instances: Instance[], t: LaunchedTry) => Promise<T>;
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
    const { rank } = request;
    return this.walk(request, {
      count: 1,
      scope: rank === undefined ? undefined : `r${rank}`,
      adopt: () => this.findAttemptInstance(request.runId, request.attempt, rank),
      accept: async ([instance], t) => this.launched(instance ?? {}, { ...t, rank }),
    });
  }

  /**
   * Every try asks for the whole fleet in one RunInstances (MinCount = MaxCount = count): EC2
   * launches all of them or none, so a capacity refusal leaves nothing to release and the walk
   * moves on. Ranks follow the launch index and are tagged (`runctl:rank`) one CreateTags per
   * node: a call applies the same tags to every resource it names, and each rank is a value of
   * its own.
   *
   * A retried call adopts the attempt's fleet when all `count` nodes are alive. When fewer are,
   * it replays the walk: EC2 answers a replayed client token with the reservation it launched
   * (whatever EC2's eventual consistency hid from the lookup shows up there). If that
   * reservation has lost a node, the survivors are terminated and Instance.Lost is thrown: the
   * attempt's tokens are spent (a replay returns the dead node again), so only a new attempt,
   * with new tokens, can launch the fleet whole.
   */
  async launchNodes(request: LaunchNodesRequest): Promise<LaunchedInstance[]> {
    const { count } = request;
    if (!Number.isInteger(count) || count < 1) {
      throw new RunInvalidError(`A fleet of ${count} nodes cannot be launched`, [{ path: 'nodes', message: 'must be a whole number of at least 1' }]);
    }
    return this.walk(request, {
      count,
      scope: `n${count}`,
      adopt: () => this.findAttemptFleet(request.runId, request.attempt, count),
      accept: (instances, t) => this.acceptFleet(request, instances, t),
    });
  }

  /** The walk of every launch: markets × types × subnets, a deterministic client token per try. */
  private async walk<T>(request: LaunchRequest | LaunchNodesRequest, walk: Walk<T>): Promise<T> {
    checkTagKeys(request.tags);
    const instanceTypes = knownInstanceTypes(request.instanceTypes);
    const adopted = await walk.adopt();
    if (adopted !== undefined) return adopted;

    const imageId = request.ami ?? (await this.call(() => resolveAmiFromParameter(this.ssm, this.amiParameter()), 'GetParameter'));
    const rootDevice = await this.call(() => amiRootDeviceName(this.ec2, imageId), 'DescribeImages');
    const placements = await this.placements(request);
    const markets = request.spot ? (request.onDemandFallback ? [true, false] : [true]) : [false];
    const defaults = {
      stack: this.options.stack,
      instanceProfile: this.options.defaultInstanceProfile,
      securityGroupIds: this.options.securityGroupIds,
    };

    const misses: CapacityMiss[] = [];
    let index = 0;
    for (const spot of markets) {
      for (const instanceType of instanceTypes) {
        for (const placement of placements) {
          const token = clientToken(request.runId, request.attempt, index, walk.scope);
          index += 1;
          const t = { imageId, rootDevice, instanceType, placement, spot, token, count: walk.count };
          const input = runInstancesInput(request, t, defaults);
          let instances: Instance[];
          try {
            const output = await withThrottleRetry(() => this.ec2.send(new RunInstancesCommand(input)), this.retry);
            instances = output.Instances ?? [];
          } catch (error) {
            const code = awsErrorCode(error);
            if (code !== undefined && CAPACITY_CODES.has(code)) {
              misses.push({ instanceType, subnetId: placement.subnetId, spot, code });
              continue;
            }
            if (code === 'IdempotentParameterMismatch') {
              // An earlier call with this token launched with other parameters (the "latest" AMI
              // moved, or the spec changed between retries): what it launched, if alive, is ours.
              const existing = await walk.adopt();
              if (existing !== undefined) return existing;
              throw new ConflictError(
                `Client token ${token} was already used for a launch with other parameters, and no live ` +
                  `instance of run ${request.runId} attempt ${request.attempt} exists; start a new attempt`,
                { cause: error },
              );
            }
            throw translateAwsError(error, `RunInstances ${instanceType} in ${placement.subnetId}`);
          }
          if (instances.length !== walk.count || instances.some((i) => i.InstanceId === undefined)) {
            throw new AwsCallFailedError(
              `RunInstances returned ${instances.length} instances for client token ${token}, not ${walk.count}`,
            );
          }
          return walk.accept(instances, { instanceType, placement, spot, misses, token });
        }
      }
    }
    const tried = misses
      .map((m) => `${m.instanceType} ${m.spot ? 'spot' : 'on-demand'} in ${m.subnetId ?? 'any subnet'} (${m.code})`)
      .join(', ');
    const what = walk.count === 1 ? '' : ` (${walk.count} nodes at once)`;
    throw new CapacityUnavailableError(
      `No capacity for run ${request.runId} attempt ${request.attempt}${what}; tried ${tried}`,
    );
  }

  /** A fleet RunInstances returned: whole and tagged with its ranks, or Instance.Lost (see launchNodes). */
  private async acceptFleet(request: LaunchNodesRequest, instances: Instance[], t: LaunchedTry): Promise<LaunchedInstance[]> {
    const byIndex = [...instances].sort((a, b) => (a.AmiLaunchIndex ?? 0) - (b.AmiLaunchIndex ?? 0));
    const alive = byIndex.filter((i) => ADOPTABLE_STATES.includes(i.State?.Name ?? 'pending'));
    if (alive.length < request.count) {
      await Promise.all(alive.map((i) => this.terminate(i.InstanceId ?? '')));
      const lost = byIndex.flatMap((i, rank) => (alive.includes(i) ? [] : [`rank ${rank} (${i.InstanceId ?? '?'}, ${i.State?.Name ?? '?'})`]));
      throw new InstanceLostError(
        `Run ${request.runId} attempt ${request.attempt} lost ${lost.join(', ')} before its launch (client token ` +
          `${t.token}) returned; the ${alive.length} surviving nodes were terminated: the attempt's client tokens ` +
          `would launch the lost node again, so a new attempt launches the fleet`,
      );
    }
    const ranked = byIndex.map((instance, rank) => ({ instance, rank }));
    await this.tagRanks(ranked.filter(({ instance, rank }) => taggedRank(instance) !== rank));
    return ranked.map(({ instance, rank }) => this.launched(instance, { ...t, rank }));
  }

  /** One CreateTags per node (each rank is its own value), retried while EC2 does not know the new instance yet. */
  private async tagRanks(nodes: { instance: Instance; rank: number }[]): Promise<void> {
    await Promise.all(
      nodes.map(async ({ instance, rank }) => {
        const instanceId = instance.InstanceId ?? '';
        const command = new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: RANK_TAG, Value: String(rank) }] });
        for (let tries = 1; ; tries += 1) {
          try {
            await withThrottleRetry(() => this.ec2.send(command), this.retry);
            return;
          } catch (error) {
            if (awsErrorCode(error) !== 'InvalidInstanceID.NotFound' || tries >= NEW_INSTANCE_TRIES) {
              throw translateAwsError(error, `CreateTags ${RANK_TAG}=${rank} on ${instanceId}`);
            }
            await (this.retry.sleep ?? sleep)(Math.min(this.retry.maxMs ?? 20_000, this.retry.baseMs * 2 ** (tries - 1)));
          }
        }
      }),
    );
  }

  /** One CreateTags for every kept node: `runctl:attempt` now names the attempt they serve. */
  async tagAttempt(instanceIds: readonly string[], attempt: number): Promise<void> {
    if (instanceIds.length === 0) return;
    await this.call(
      () => this.ec2.send(new CreateTagsCommand({ Resources: [...instanceIds], Tags: [{ Key: ATTEMPT_TAG, Value: String(attempt) }] })),
      `CreateTags ${ATTEMPT_TAG}=${attempt} on ${instanceIds.join(', ')}`,
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

  instanceStates(instanceIds: readonly string[]): Promise<Map<string, InstanceLifecycleState>> {
    return new Ec2InstanceStates(this.ec2, this.retry).instanceStates(instanceIds);
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
          rank: taggedRank(instance),
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

  /**
   * The live instance a previous call launched for this attempt, if any. A node launched alone
   * (`rank`) adopts only the instance of its rank: the other nodes of the run share its run and
   * attempt tags.
   */
  private async findAttemptInstance(runId: string, attempt: number, rank?: number): Promise<LaunchedInstance | undefined> {
    const [instance] = await this.describeAll(
      [
        ...this.attemptFilters(runId, attempt),
        ...(rank === undefined ? [] : [{ Name: `tag:${RANK_TAG}`, Values: [String(rank)] }]),
      ],
      `DescribeInstances for run ${runId} attempt ${attempt}${rank === undefined ? '' : ` rank ${rank}`}`,
    );
    if (instance?.InstanceId === undefined) return undefined;
    return this.launched(instance, {
      instanceType: instance.InstanceType ?? 'unknown',
      placement: { subnetId: instance.SubnetId ?? '' },
      spot: instance.InstanceLifecycle === 'spot',
      misses: [],
      rank,
    });
  }

  /**
   * The attempt's fleet when a previous call launched it and all `count` nodes are alive, in rank
   * order (the rank tag, or the launch index where a previous call did not get to tag it).
   * Anything less is not adopted: see launchNodes.
   */
  private async findAttemptFleet(runId: string, attempt: number, count: number): Promise<LaunchedInstance[] | undefined> {
    const found = await this.describeAll(this.attemptFilters(runId, attempt), `DescribeInstances for run ${runId} attempt ${attempt}`);
    const ranked = found
      .map((instance) => ({ instance, rank: taggedRank(instance) ?? instance.AmiLaunchIndex ?? -1 }))
      .sort((a, b) => a.rank - b.rank);
    if (ranked.length !== count || ranked.some(({ rank }, position) => rank !== position)) return undefined;
    await this.tagRanks(ranked.filter(({ instance, rank }) => taggedRank(instance) !== rank));
    return ranked.map(({ instance, rank }) =>
      this.launched(instance, {
        instanceType: instance.InstanceType ?? 'unknown',
        placement: { subnetId: instance.SubnetId ?? '' },
        spot: instance.InstanceLifecycle === 'spot',
        misses: [],
        rank,
      }),
    );
  }

  /** This stack's instances of the attempt that a retried launch may adopt. */
  private attemptFilters(runId: string, attempt: number): Filter[] {
    return [
      { Name: `tag:${RUN_TAG}`, Values: [runId] },
      { Name: `tag:${ATTEMPT_TAG}`, Values: [String(attempt)] },
      this.stackFilter(),
      { Name: 'instance-state-name', Values: ADOPTABLE_STATES },
    ];
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
  private async placements(request: LaunchRequest | LaunchNodesRequest): Promise<Placement[]> {
    const wanted =
      request.subnetId !== undefined
        ? [request.subnetId]
        : request.subnets.length > 0
          ? request.subnets
          : (this.options.defaultSubnets ?? []);
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

  private launched(
    instance: Instance,
    t: { instanceType: string; placement: Placement; spot: boolean; misses: CapacityMiss[]; rank?: number },
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
      privateIp: instance.PrivateIpAddress,
      ...(t.rank === undefined ? {} : { rank: t.rank }),
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
