/**
 * The per-run network of multi-node runs on AWS: a security group through which only the run's
 * own nodes reach each other, and a cluster placement group that keeps them close.
 *
 * Both are named after the stack and the run (`<stack>-<runId>`), so a retried step finds what
 * an earlier call created (the Duplicate answers), and both carry `runctl:run` and this stack's
 * `runctl:stack` from their creation: the IAM conditions on every change require that tag, and
 * every lookup here filters on it.
 */
import {
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreatePlacementGroupCommand,
  CreateSecurityGroupCommand,
  DeletePlacementGroupCommand,
  DeleteSecurityGroupCommand,
  DescribePlacementGroupsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
  paginateDescribeSecurityGroups,
  type EC2Client,
  type Filter,
  type IpPermission,
  type SecurityGroup,
  type Tag,
} from '@aws-sdk/client-ec2';
import { instanceFamily } from '../domain/instance-gpus';
import { AwsCallFailedError, ConflictError, PrecheckFailedError } from '../errors';
import type { NodeNetworks, RunNetwork } from '../ports/compute';
import { STACK_TAG } from '../ports/stack-tag';
import { awsErrorCode, translateAwsError, withThrottleRetry, type ThrottleRetryOptions } from './aws-errors';
import { RUN_TAG, tagValue } from './ec2-launch';

/**
 * Families EC2 does not place in cluster placement groups (EC2 User Guide, "Placement group
 * rules and limitations": burstable performance instances, Mac instances, M7i-flex). Their runs
 * get the security group only; runctl refuses burstable types for nodes > 1 anyway
 * (shared/domain/multi-node.ts), the rest still train, just not packed onto one network spine.
 */
const NO_CLUSTER_PLACEMENT = /^(t\d+[a-z]*|mac\d+[a-z-]*|m7i-flex)$/;

/** Answers of a delete while instances that used the group are still shutting down. */
const STILL_IN_USE = new Set(['DependencyViolation', 'InvalidPlacementGroup.InUse']);
/** Answers meaning "there is no such group": a delete that finds it gone has succeeded. */
const ABSENT = new Set(['InvalidGroup.NotFound', 'InvalidPlacementGroup.Unknown']);

/**
 * How long a release waits for instances to finish shutting down: 2 + 4 + 8 + 16 s between five
 * tries stays well inside ReleaseResources' 60 s timeout. A terminated instance usually lets go
 * of its groups within a minute; what is still held after this is left to the reconciler.
 */
const DEFAULT_RELEASE_RETRY: ReleaseRetryOptions = { attempts: 5, baseMs: 2_000 };

export interface ReleaseRetryOptions {
  attempts: number;
  /** The first wait; doubles on each retry. */
  baseMs: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface Ec2NodeNetworksOptions {
  ec2: EC2Client;
  /** This stack's name: part of every group's name, its `runctl:stack` tag and every lookup's filter. */
  stack: string;
  /** The subnets the compute adapter uses when a run names none (their VPC is the run's). */
  defaultSubnets?: readonly string[];
  throttleRetry?: ThrottleRetryOptions;
  releaseRetry?: ReleaseRetryOptions;
}

/** NodeNetworks on EC2: one security group and (where the type allows) one cluster placement group per run. */
export class Ec2NodeNetworks implements NodeNetworks {
  private readonly ec2: EC2Client;
  private readonly stack: string;
  private readonly retry: ThrottleRetryOptions;
  private readonly releaseRetry: ReleaseRetryOptions;
  private readonly defaultSubnets: readonly string[];

  constructor(options: Ec2NodeNetworksOptions) {
    this.ec2 = options.ec2;
    this.stack = options.stack;
    this.retry = options.throttleRetry ?? { attempts: 3, baseMs: 250 };
    this.releaseRetry = options.releaseRetry ?? DEFAULT_RELEASE_RETRY;
    this.defaultSubnets = options.defaultSubnets ?? [];
  }

  /** The name of a run's security group and placement group. */
  nameOf(runId: string): string {
    return `${this.stack}-${runId}`;
  }

  async ensure(runId: string, at: { subnets: readonly string[]; instanceType: string }): Promise<RunNetwork> {
    const vpcId = await this.vpcOf(at.subnets.length > 0 ? at.subnets : this.defaultSubnets);
    const securityGroupId = await this.ensureSecurityGroup(runId, vpcId);
    if (!supportsClusterPlacement(at.instanceType)) return { securityGroupId };
    const placementGroup = await this.ensurePlacementGroup(runId);
    return { placementGroup, securityGroupId };
  }

  async release(runId: string): Promise<void> {
    let left: string[] = [];
    for (let attempt = 1; ; attempt += 1) {
      left = [];
      for (const group of await this.securityGroupsOf(runId)) {
        const remove = () => this.ec2.send(new DeleteSecurityGroupCommand({ GroupId: group.GroupId }));
        if (!(await this.deleteOrStillInUse(remove, `DeleteSecurityGroup ${group.GroupId ?? '?'}`))) {
          left.push(`security group ${group.GroupId ?? '?'} (${group.GroupName ?? '?'})`);
        }
      }
      for (const name of await this.placementGroupsOf(runId)) {
        const remove = () => this.ec2.send(new DeletePlacementGroupCommand({ GroupName: name }));
        if (!(await this.deleteOrStillInUse(remove, `DeletePlacementGroup ${name}`))) {
          left.push(`placement group ${name}`);
        }
      }
      if (left.length === 0) return;
      if (attempt >= this.releaseRetry.attempts) break;
      await (this.releaseRetry.sleep ?? sleep)(this.releaseRetry.baseMs * 2 ** (attempt - 1));
    }
    throw new ConflictError(
      `Run ${runId}'s ${left.join(' and ')} ${left.length === 1 ? 'is' : 'are'} still in use by instances that are ` +
        `shutting down after ${this.releaseRetry.attempts} tries; the reconciler deletes what is left once they are gone`,
    );
  }

  async listRunNetworks(): Promise<string[]> {
    const ours: Filter[] = [this.stackFilter(), { Name: 'tag-key', Values: [RUN_TAG] }];
    const groups = await this.call(async () => {
      const found: SecurityGroup[] = [];
      for await (const page of paginateDescribeSecurityGroups({ client: this.ec2 }, { Filters: ours })) found.push(...(page.SecurityGroups ?? []));
      return found;
    }, `DescribeSecurityGroups of ${this.stack}`);
    const placements = await this.call(
      () => this.ec2.send(new DescribePlacementGroupsCommand({ Filters: ours })),
      `DescribePlacementGroups of ${this.stack}`,
    );
    const live = (placements.PlacementGroups ?? []).filter((p) => p.State !== 'deleting' && p.State !== 'deleted');
    const runIds = [...groups.map((g) => g.Tags), ...live.map((p) => p.Tags)].flatMap((tags) => {
      const runId = tagValue(tags, RUN_TAG);
      return runId === undefined ? [] : [runId];
    });
    return [...new Set(runIds)].sort();
  }

  /** The VPC of the subnets (their first; a run's subnets are one VPC's), or the default VPC. */
  private async vpcOf(subnets: readonly string[]): Promise<string> {
    const first = subnets[0];
    if (first !== undefined) {
      const output = await this.call(() => this.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [first] })), `DescribeSubnets ${first}`);
      const vpcId = output.Subnets?.[0]?.VpcId;
      if (vpcId === undefined) throw new AwsCallFailedError(`DescribeSubnets ${first} returned no VPC`);
      return vpcId;
    }
    const output = await this.call(
      () => this.ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] })),
      'DescribeVpcs is-default',
    );
    const vpcId = output.Vpcs?.[0]?.VpcId;
    if (vpcId === undefined) {
      throw new PrecheckFailedError('No subnet was given and this region has no default VPC; configure subnets');
    }
    return vpcId;
  }

  /**
   * The run's security group, created or found, with exactly its rules: every TCP port in from
   * the group itself and out to it (the rendezvous port, and the ephemeral ports gloo and NCCL
   * connect on), nothing else. EC2 gives a new group an allow-all egress rule, which is revoked:
   * an instance's egress is the union of its groups, and the stack's training group allows only
   * HTTPS and HTTP out.
   */
  private async ensureSecurityGroup(runId: string, vpcId: string): Promise<string> {
    const name = this.nameOf(runId);
    let groupId: string | undefined;
    try {
      const created = await withThrottleRetry(
        () =>
          this.ec2.send(
            new CreateSecurityGroupCommand({
              GroupName: name,
              Description: `runctl ${this.stack} run ${runId}: its nodes reach each other on every TCP port, nothing else`,
              VpcId: vpcId,
              TagSpecifications: [{ ResourceType: 'security-group', Tags: this.tagsOf(runId) }],
            }),
          ),
        this.retry,
      );
      groupId = created.GroupId;
    } catch (error) {
      if (awsErrorCode(error) !== 'InvalidGroup.Duplicate') throw translateAwsError(error, `CreateSecurityGroup ${name}`);
    }
    const [group] = await this.describeGroups([
      ...(groupId === undefined ? [{ Name: 'group-name', Values: [name] }, { Name: 'vpc-id', Values: [vpcId] }] : [{ Name: 'group-id', Values: [groupId] }]),
      this.stackFilter(),
    ]);
    if (group?.GroupId === undefined) {
      throw new ConflictError(`A security group named ${name} exists in ${vpcId} but is not tagged as this stack's (${this.stack})`);
    }
    await this.converge(group);
    return group.GroupId;
  }

  /** Adds the self rules a group lacks and revokes every other rule (see ensureSecurityGroup). */
  private async converge(group: SecurityGroup): Promise<void> {
    const groupId = group.GroupId ?? '';
    const self: IpPermission = { IpProtocol: 'tcp', FromPort: 0, ToPort: 65535, UserIdGroupPairs: [{ GroupId: groupId }] };
    const ingress = group.IpPermissions ?? [];
    const egress = group.IpPermissionsEgress ?? [];
    const strayIngress = ingress.filter((p) => !isSelfRule(p, groupId));
    const strayEgress = egress.filter((p) => !isSelfRule(p, groupId));
    const calls: [string, () => Promise<unknown>][] = [];
    if (!ingress.some((p) => isSelfRule(p, groupId))) {
      calls.push(['AuthorizeSecurityGroupIngress', () => this.ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: [self] }))]);
    }
    if (!egress.some((p) => isSelfRule(p, groupId))) {
      calls.push(['AuthorizeSecurityGroupEgress', () => this.ec2.send(new AuthorizeSecurityGroupEgressCommand({ GroupId: groupId, IpPermissions: [self] }))]);
    }
    if (strayIngress.length > 0) {
      calls.push(['RevokeSecurityGroupIngress', () => this.ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: strayIngress }))]);
    }
    if (strayEgress.length > 0) {
      calls.push(['RevokeSecurityGroupEgress', () => this.ec2.send(new RevokeSecurityGroupEgressCommand({ GroupId: groupId, IpPermissions: strayEgress }))]);
    }
    for (const [operation, send] of calls) {
      try {
        await withThrottleRetry(send, this.retry);
      } catch (error) {
        // A concurrent call of the same step got there first.
        const code = awsErrorCode(error);
        if (code === 'InvalidPermission.Duplicate' || code === 'InvalidPermission.NotFound') continue;
        throw translateAwsError(error, `${operation} on ${groupId}`);
      }
    }
  }

  private async ensurePlacementGroup(runId: string): Promise<string> {
    const name = this.nameOf(runId);
    try {
      await withThrottleRetry(
        () =>
          this.ec2.send(
            new CreatePlacementGroupCommand({
              GroupName: name,
              Strategy: 'cluster',
              TagSpecifications: [{ ResourceType: 'placement-group', Tags: this.tagsOf(runId) }],
            }),
          ),
        this.retry,
      );
      return name;
    } catch (error) {
      if (awsErrorCode(error) !== 'InvalidPlacementGroup.Duplicate') throw translateAwsError(error, `CreatePlacementGroup ${name}`);
    }
    // Names are unique per account and Region: the one there must be this run's, of this stack.
    if (!(await this.placementGroupsOf(runId)).includes(name)) {
      throw new ConflictError(`A placement group named ${name} exists but is not tagged as run ${runId} of ${this.stack}`);
    }
    return name;
  }

  private async securityGroupsOf(runId: string): Promise<SecurityGroup[]> {
    return this.describeGroups([this.stackFilter(), { Name: `tag:${RUN_TAG}`, Values: [runId] }]);
  }

  private async placementGroupsOf(runId: string): Promise<string[]> {
    const output = await this.call(
      () => this.ec2.send(new DescribePlacementGroupsCommand({ Filters: [this.stackFilter(), { Name: `tag:${RUN_TAG}`, Values: [runId] }] })),
      `DescribePlacementGroups of run ${runId}`,
    );
    // A group being deleted is listed for a while; it is gone as far as the run is concerned.
    return (output.PlacementGroups ?? []).flatMap((p) => (p.GroupName === undefined || p.State === 'deleted' || p.State === 'deleting' ? [] : [p.GroupName]));
  }

  private describeGroups(filters: Filter[]): Promise<SecurityGroup[]> {
    return this.call(
      async () => (await this.ec2.send(new DescribeSecurityGroupsCommand({ Filters: filters }))).SecurityGroups ?? [],
      'DescribeSecurityGroups',
    );
  }

  /** True when the group is gone (deleted now, or already); false while instances still hold it. */
  private async deleteOrStillInUse(remove: () => Promise<unknown>, operation: string): Promise<boolean> {
    try {
      await withThrottleRetry(remove, this.retry);
      return true;
    } catch (error) {
      const code = awsErrorCode(error);
      if (code !== undefined && ABSENT.has(code)) return true;
      if (code !== undefined && STILL_IN_USE.has(code)) return false;
      throw translateAwsError(error, operation);
    }
  }

  private tagsOf(runId: string): Tag[] {
    return [
      { Key: 'Name', Value: this.nameOf(runId) },
      { Key: RUN_TAG, Value: runId },
      { Key: STACK_TAG, Value: this.stack },
    ];
  }

  private stackFilter(): Filter {
    return { Name: `tag:${STACK_TAG}`, Values: [this.stack] };
  }

  private call<T>(fn: () => Promise<T>, operation: string): Promise<T> {
    return withThrottleRetry(fn, this.retry).catch((error: unknown) => {
      throw translateAwsError(error, operation);
    });
  }
}

/** Whether EC2 places this type in a cluster placement group (see NO_CLUSTER_PLACEMENT). */
export function supportsClusterPlacement(instanceType: string): boolean {
  return !NO_CLUSTER_PLACEMENT.test(instanceFamily(instanceType));
}

/** The rule "every TCP port, from (or to) the group itself", however EC2 spells it back. */
function isSelfRule(permission: IpPermission, groupId: string): boolean {
  const pairs = permission.UserIdGroupPairs ?? [];
  return (
    permission.IpProtocol === 'tcp' &&
    permission.FromPort === 0 &&
    permission.ToPort === 65535 &&
    pairs.length === 1 &&
    pairs[0]?.GroupId === groupId &&
    (permission.IpRanges ?? []).length === 0 &&
    (permission.Ipv6Ranges ?? []).length === 0 &&
    (permission.PrefixListIds ?? []).length === 0
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
