/**
 * What one RunInstances try of the compute adapter asks EC2 for: its client token, its tags and
 * its input. Pure functions of the request, so a retried Lambda rebuilds exactly the same calls.
 */
import { createHash } from 'node:crypto';
import { _InstanceType, type Instance, type RunInstancesCommandInput, type Tag } from '@aws-sdk/client-ec2';
import { RunInvalidError } from '../errors';
import type { LaunchRequest, RunNetwork } from '../ports/compute';
import { STACK_TAG } from '../ports/stack-tag';

export const RUN_TAG = 'runctl:run';
export const ATTEMPT_TAG = 'runctl:attempt';
/** A node's rank in a multi-node run (docs/multi-node.md); absent on single-node instances. */
export const RANK_TAG = 'runctl:rank';
/** Tag of prewarm and image-build helper instances (see shared/usecases/volume-helper.ts). */
export const HELPER_TAG = 'runctl:helper';

/** Refusals that mean "not this type here, now": the walk moves on to the next try. */
export const CAPACITY_CODES: ReadonlySet<string> = new Set([
  'InsufficientInstanceCapacity',
  'MaxSpotInstanceCountExceeded',
  'SpotMaxPriceTooLow',
  'Unsupported',
  'InstanceLimitExceeded',
  'VcpuLimitExceeded',
]);

/** EC2 accepts client tokens of at most 64 ASCII characters. */
const MAX_CLIENT_TOKEN = 64;

/**
 * Client token of the `index`-th try of an attempt. EC2 binds a token to the parameters of its
 * first call, so each (type, subnet, market) try needs its own; deriving it from the position in
 * a deterministic walk lets a retried Lambda replay exactly the same tokens. `scope` keeps the
 * launches of one attempt apart: `n<count>` for a multi-node fleet, `r<rank>` for one node
 * launched alone (the replacement of a lost node), none for a single-node run.
 */
export function clientToken(runId: string, attempt: number, index: number, scope?: string): string {
  const base = scope === undefined ? `${runId}-${attempt}` : `${runId}-${attempt}-${scope}`;
  const token = index === 0 ? base : `${base}-${index}`;
  return token.length <= MAX_CLIENT_TOKEN ? token : createHash('sha256').update(token).digest('hex');
}

/**
 * The tags of a launch, on the instance and its root volume alike. runctl's own come after the
 * user's, so a user tag can never pose as another run's (or another stack's) instance; the IAM
 * conditions on RunInstances require `runctl:run` and this stack's `runctl:stack`. A node
 * launched alone carries its rank from the start; a fleet's ranks differ per instance, which a
 * launch's shared tags cannot say, so they are tagged right after (Ec2Compute.launchNodes).
 */
export function launchTags(request: Pick<LaunchRequest, 'runId' | 'attempt' | 'tags' | 'rank'>, stack: string): Tag[] {
  return Object.entries({
    Name: `runctl-${request.runId}-${request.attempt}`,
    ...request.tags,
    [RUN_TAG]: request.runId,
    [ATTEMPT_TAG]: String(request.attempt),
    [STACK_TAG]: stack,
    ...(request.rank === undefined ? {} : { [RANK_TAG]: String(request.rank) }),
  }).map(([Key, Value]) => ({ Key, Value }));
}

export interface Placement {
  subnetId: string;
  availabilityZone?: string;
}

/** One try of the walk: what varies between the RunInstances calls of one launch. */
export interface LaunchTry {
  imageId: string;
  rootDevice: string;
  instanceType: _InstanceType;
  placement: Placement;
  spot: boolean;
  token: string;
  /** Instances asked for, all or none (MinCount = MaxCount). */
  count: number;
}

/** What the stack configures for every launch. */
export interface LaunchDefaults {
  stack: string;
  instanceProfile?: string;
  securityGroupIds?: readonly string[];
}

/** The RunInstances input of one try. */
export function runInstancesInput(
  request: Omit<LaunchRequest, 'instanceTypes' | 'subnets'>,
  t: LaunchTry,
  defaults: LaunchDefaults,
): RunInstancesCommandInput {
  const tags = launchTags(request, defaults.stack);
  const profile = request.instanceProfile ?? defaults.instanceProfile;
  const groups = securityGroupsOf(defaults.securityGroupIds ?? [], request.network);
  const placementGroup = request.network?.placementGroup;
  return {
    ClientToken: t.token,
    ImageId: t.imageId,
    InstanceType: t.instanceType,
    MinCount: t.count,
    MaxCount: t.count,
    SubnetId: t.placement.subnetId,
    SecurityGroupIds: groups.length > 0 ? groups : undefined,
    ...(placementGroup === undefined ? {} : { Placement: { GroupName: placementGroup } }),
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

/** The stack's groups, plus the run's node group when the run has one (its nodes reach each other through it). */
function securityGroupsOf(configured: readonly string[], network: RunNetwork | undefined): string[] {
  const node = network?.securityGroupId;
  return node === undefined || configured.includes(node) ? [...configured] : [...configured, node];
}

export function tagValue(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((tag) => tag.Key === key)?.Value;
}

/** The rank an instance's `runctl:rank` tag names, if it names a valid one. */
export function taggedRank(instance: Instance): number | undefined {
  const value = tagValue(instance.Tags, RANK_TAG);
  if (value === undefined || !/^\d{1,3}$/.test(value)) return undefined;
  return Number(value);
}

const INSTANCE_TYPES: ReadonlySet<string> = new Set(Object.values(_InstanceType));

function isInstanceType(value: string): value is _InstanceType {
  return INSTANCE_TYPES.has(value);
}

/** The requested types, refused up front when one is unknown to EC2 (a typo would else read as "no capacity"). */
export function knownInstanceTypes(requested: readonly string[]): _InstanceType[] {
  const unknown = requested.filter((type) => !isInstanceType(type));
  if (unknown.length > 0 || requested.length === 0) {
    throw new RunInvalidError(
      requested.length === 0 ? 'No instance type was given' : `Unknown instance types: ${unknown.join(', ')}`,
      unknown.map((type) => ({ path: 'instance.types', message: `${type} is not an EC2 instance type` })),
    );
  }
  return requested.filter(isInstanceType);
}

/** With instance metadata tags enabled, EC2 refuses tag keys containing '/' or made of dots only. */
export function checkTagKeys(tags: Readonly<Record<string, string>>): void {
  const bad = Object.keys(tags).filter((key) => key.includes('/') || /^\.+$/.test(key));
  if (bad.length > 0) {
    throw new RunInvalidError(
      `Tag keys ${bad.join(', ')} cannot be used: instance tags are exposed in instance metadata, which forbids '/' and '.'/'..'`,
      bad.map((key) => ({ path: `tags.${key}`, message: "must not contain '/' or be made of dots only" })),
    );
  }
}
