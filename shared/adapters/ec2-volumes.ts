/**
 * EBS volumes and snapshots through the EC2 API. Creation is idempotent twice over: EC2's own
 * ClientToken, and a lookup by the request tag first (a Lambda retried after its response was
 * lost finds its volume instead of creating a second one).
 */
import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  paginateDescribeSnapshots,
  paginateDescribeVolumes,
  waitUntilVolumeAvailable,
  waitUntilVolumeInUse,
  type EC2Client,
  type Filter,
  type Snapshot,
  type Tag,
  type Volume,
} from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { AwsCallFailedError } from '../errors';
import {
  SnapshotMissingError,
  VolumeAzMismatchError,
  VolumeFailedError,
  VolumeInUseError,
  type CreateVolumeRequest,
  type SnapshotInfo,
  type VolumeAttachmentInfo,
  type VolumeInfo,
  type Volumes,
} from '../ports/volumes';
import { STACK_TAG } from '../ports/stack-tag';
import { awsErrorCode, translateAwsError, withThrottleRetry, type ThrottleRetryOptions } from './aws-errors';

/** Tag holding the client token of the create that made a volume. */
export const REQUEST_TAG = 'runctl:request';

/** EC2 limits: client tokens ≤ 64 ASCII characters, tag values ≤ 256. */
const MAX_CLIENT_TOKEN = 64;
const MAX_TAG_VALUE = 256;

const VolumeStateSchema = z.enum(['creating', 'available', 'in-use', 'deleting', 'deleted', 'error']);
const AttachmentStateSchema = z.enum(['attaching', 'attached', 'detaching', 'detached', 'busy']);
const SnapshotStateSchema = z.enum(['pending', 'completed', 'error', 'recoverable', 'recovering']);

export interface Ec2VolumesOptions {
  ec2: EC2Client;
  /** This stack's name: the `runctl:stack` tag of every volume and snapshot made, and the filter of every lookup. */
  stack: string;
  throttleRetry?: ThrottleRetryOptions;
  /** Waiter polling bounds, seconds (tests make them short). */
  waiterDelay?: { min: number; max: number };
}

export class Ec2Volumes implements Volumes {
  private readonly ec2: EC2Client;
  private readonly retry: ThrottleRetryOptions;
  private readonly delay: { min: number; max: number };
  private readonly stack: string;

  constructor(options: Ec2VolumesOptions) {
    this.ec2 = options.ec2;
    this.stack = options.stack;
    this.retry = options.throttleRetry ?? { attempts: 3, baseMs: 250 };
    this.delay = options.waiterDelay ?? { min: 2, max: 15 };
  }

  async create(request: CreateVolumeRequest): Promise<VolumeInfo> {
    if (request.clientToken.length > MAX_CLIENT_TOKEN) {
      throw new AwsCallFailedError(`Client token ${request.clientToken} is longer than ${MAX_CLIENT_TOKEN} characters`);
    }
    const [existing] = await this.findTagged(REQUEST_TAG, request.clientToken);
    if (existing !== undefined) return existing;
    const tags = toTags({ ...request.tags, [REQUEST_TAG]: request.clientToken, [STACK_TAG]: this.stack });
    let output;
    try {
      output = await withThrottleRetry(() =>
        this.ec2.send(
          new CreateVolumeCommand({
            ClientToken: request.clientToken,
            AvailabilityZone: request.availabilityZone,
            Size: request.sizeGiB,
            VolumeType: request.type,
            Iops: request.iops,
            Throughput: request.throughput,
            SnapshotId: request.snapshotId,
            Encrypted: request.snapshotId === undefined ? true : undefined,
            TagSpecifications: [{ ResourceType: 'volume', Tags: tags }],
          }),
        ), this.retry,
      );
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === 'InvalidSnapshot.NotFound' || code === 'InvalidSnapshotID.Malformed') {
        throw new SnapshotMissingError(`Snapshot ${request.snapshotId ?? ''} does not exist; prewarm the dataset again`, { cause: error });
      }
      if (code === 'InvalidZone.NotFound' || code === 'InvalidParameterValue' || code === 'InvalidParameterCombination') {
        throw new VolumeFailedError(`CreateVolume refused the request: ${code}`, { cause: error });
      }
      throw translateAwsError(error, 'CreateVolume');
    }
    if (output.VolumeId === undefined) throw new AwsCallFailedError('CreateVolume returned no volume id');
    return {
      volumeId: output.VolumeId,
      availabilityZone: output.AvailabilityZone ?? request.availabilityZone,
      state: parseVolumeState(output.State ?? 'creating'),
      sizeGiB: output.Size ?? request.sizeGiB,
      type: output.VolumeType,
      snapshotId: output.SnapshotId === '' ? undefined : output.SnapshotId,
      attachments: [],
      tags: fromTags(output.Tags ?? tags),
    };
  }

  async describe(volumeId: string): Promise<VolumeInfo | undefined> {
    try {
      const output = await withThrottleRetry(() => this.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] })), this.retry);
      const volume = output.Volumes?.[0];
      return volume === undefined ? undefined : toVolumeInfo(volume);
    } catch (error) {
      if (awsErrorCode(error) === 'InvalidVolume.NotFound') return undefined;
      throw translateAwsError(error, `DescribeVolumes ${volumeId}`);
    }
  }

  async findTagged(key: string, value: string): Promise<VolumeInfo[]> {
    const filters = this.taggedFilters(key, value);
    return this.send(`DescribeVolumes tagged ${key}`, async () => {
      const found: VolumeInfo[] = [];
      for await (const page of paginateDescribeVolumes({ client: this.ec2 }, { Filters: filters })) {
        for (const volume of page.Volumes ?? []) {
          const info = toVolumeInfo(volume);
          if (info.state !== 'deleted' && info.state !== 'deleting') found.push(info);
        }
      }
      return found;
    });
  }

  async waitAvailable(volumeId: string, maxWaitSeconds: number): Promise<void> {
    await this.wait(`volume ${volumeId} available`, () =>
      waitUntilVolumeAvailable(this.waiterConfig(maxWaitSeconds), { VolumeIds: [volumeId] }),
    );
  }

  async attach(volumeId: string, instanceId: string, device: string): Promise<void> {
    try {
      await withThrottleRetry(
        () => this.ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device })),
        this.retry,
      );
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === 'VolumeInUse' || code === 'IncorrectState') {
        // A retried attach finds its own earlier attachment: that is success, not a conflict.
        const volume = await this.describe(volumeId);
        if (volume?.attachments.some((a) => a.instanceId === instanceId && a.state !== 'detaching' && a.state !== 'detached')) return;
        const holder = volume?.attachments.map((a) => a.instanceId).join(', ') || 'another instance';
        throw new VolumeInUseError(`Volume ${volumeId} is attached to ${holder}; it can be attached to one instance at a time`, { cause: error });
      }
      if (code === 'InvalidVolume.ZoneMismatch') {
        throw new VolumeAzMismatchError(`Volume ${volumeId} is in another availability zone than instance ${instanceId}`, { cause: error });
      }
      throw translateAwsError(error, `AttachVolume ${volumeId} to ${instanceId}`);
    }
  }

  async waitAttached(volumeId: string, maxWaitSeconds: number): Promise<void> {
    await this.wait(`volume ${volumeId} attached`, () =>
      waitUntilVolumeInUse(this.waiterConfig(maxWaitSeconds), { VolumeIds: [volumeId] }),
    );
  }

  async detach(volumeId: string, instanceId: string, options: { force?: boolean } = {}): Promise<void> {
    try {
      await withThrottleRetry(
        () => this.ec2.send(new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Force: options.force })),
        this.retry,
      );
    } catch (error) {
      const code = awsErrorCode(error);
      // Already detached (or detaching), or gone with its instance: nothing left to undo.
      if (code === 'IncorrectState' || code === 'InvalidAttachment.NotFound' || code === 'InvalidVolume.NotFound') return;
      if (code === 'InvalidInstanceID.NotFound') return;
      throw translateAwsError(error, `DetachVolume ${volumeId} from ${instanceId}`);
    }
  }

  async delete(volumeId: string): Promise<void> {
    try {
      await withThrottleRetry(() => this.ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId })), this.retry);
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === 'InvalidVolume.NotFound') return;
      if (code === 'VolumeInUse') {
        throw new VolumeInUseError(`Volume ${volumeId} is still attached and cannot be deleted yet`, { cause: error });
      }
      throw translateAwsError(error, `DeleteVolume ${volumeId}`);
    }
  }

  async createSnapshot(volumeId: string, options: { description: string; tags: Readonly<Record<string, string>> }): Promise<string> {
    const output = await this.send(`CreateSnapshot of ${volumeId}`, () =>
      this.ec2.send(
        new CreateSnapshotCommand({
          VolumeId: volumeId,
          Description: options.description.slice(0, 255),
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: toTags({ ...options.tags, [STACK_TAG]: this.stack }) }],
        }),
      ),
    );
    if (output.SnapshotId === undefined) throw new AwsCallFailedError(`CreateSnapshot of ${volumeId} returned no snapshot id`);
    return output.SnapshotId;
  }

  async describeSnapshot(snapshotId: string): Promise<SnapshotInfo | undefined> {
    try {
      const output = await withThrottleRetry(() => this.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })), this.retry);
      const snapshot = output.Snapshots?.[0];
      return snapshot === undefined ? undefined : toSnapshotInfo(snapshot);
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === 'InvalidSnapshot.NotFound' || code === 'InvalidSnapshotID.Malformed') return undefined;
      throw translateAwsError(error, `DescribeSnapshots ${snapshotId}`);
    }
  }

  async findTaggedSnapshots(key: string, value: string): Promise<SnapshotInfo[]> {
    const filters = this.taggedFilters(key, value);
    return this.send(`DescribeSnapshots tagged ${key}`, async () => {
      const found: SnapshotInfo[] = [];
      for await (const page of paginateDescribeSnapshots({ client: this.ec2 }, { OwnerIds: ['self'], Filters: filters })) {
        for (const snapshot of page.Snapshots ?? []) found.push(toSnapshotInfo(snapshot));
      }
      return found;
    });
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    try {
      await withThrottleRetry(() => this.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })), this.retry);
    } catch (error) {
      if (awsErrorCode(error) === 'InvalidSnapshot.NotFound') return;
      throw translateAwsError(error, `DeleteSnapshot ${snapshotId}`);
    }
  }

  /** `key` = `value`, on this stack's resources only: a prewarm or run id of another stage is not ours. */
  private taggedFilters(key: string, value: string): Filter[] {
    return [
      { Name: `tag:${key}`, Values: [truncateTagValue(value)] },
      { Name: `tag:${STACK_TAG}`, Values: [this.stack] },
    ];
  }

  private waiterConfig(maxWaitSeconds: number) {
    return { client: this.ec2, maxWaitTime: maxWaitSeconds, minDelay: this.delay.min, maxDelay: this.delay.max };
  }

  private async wait(what: string, run: () => Promise<{ state: string; reason?: unknown }>): Promise<void> {
    let result;
    try {
      result = await run();
    } catch (error) {
      // The waiters throw on a terminal failure state (a volume in `error`) or on timeout.
      const message = error instanceof Error ? error.message : String(error);
      if (/timeout|timed out|exceeded/i.test(message) || awsErrorCode(error) === 'TimeoutError') {
        throw new VolumeFailedError(`Timed out waiting for ${what}`, { cause: error });
      }
      if (/FAILURE|ABORTED/.test(message)) throw new VolumeFailedError(`Gave up waiting for ${what}: ${message.slice(0, 300)}`, { cause: error });
      throw translateAwsError(error, `waiting for ${what}`);
    }
    if (result.state !== 'SUCCESS') throw new VolumeFailedError(`Gave up waiting for ${what} (${result.state})`);
  }

  /** Calls `fn` with throttle backoff; the error thrown keeps the SDK error as cause after translation. */
  private send<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withThrottleRetry(fn, this.retry).catch((error: unknown) => {
      throw translateAwsError(error, operation);
    });
  }
}

function parseVolumeState(state: string): VolumeInfo['state'] {
  const parsed = VolumeStateSchema.safeParse(state);
  if (!parsed.success) throw new AwsCallFailedError(`EC2 reported an unknown volume state ${state}`);
  return parsed.data;
}

function toVolumeInfo(volume: Volume): VolumeInfo {
  const attachments: VolumeAttachmentInfo[] = (volume.Attachments ?? []).flatMap((a) => {
    const state = AttachmentStateSchema.safeParse(a.State);
    return a.InstanceId === undefined || !state.success ? [] : [{ instanceId: a.InstanceId, device: a.Device, state: state.data }];
  });
  return {
    volumeId: volume.VolumeId ?? '',
    availabilityZone: volume.AvailabilityZone ?? '',
    state: parseVolumeState(volume.State ?? 'creating'),
    sizeGiB: volume.Size ?? 0,
    type: volume.VolumeType,
    snapshotId: volume.SnapshotId === undefined || volume.SnapshotId === '' ? undefined : volume.SnapshotId,
    attachments,
    tags: fromTags(volume.Tags ?? []),
  };
}

function toSnapshotInfo(snapshot: Snapshot): SnapshotInfo {
  const state = SnapshotStateSchema.safeParse(snapshot.State);
  if (!state.success) throw new AwsCallFailedError(`EC2 reported an unknown snapshot state ${String(snapshot.State)}`);
  return {
    snapshotId: snapshot.SnapshotId ?? '',
    state: state.data,
    progress: snapshot.Progress,
    volumeSizeGiB: snapshot.VolumeSize,
    tags: fromTags(snapshot.Tags ?? []),
  };
}

function truncateTagValue(value: string): string {
  return value.slice(0, MAX_TAG_VALUE);
}

function toTags(tags: Readonly<Record<string, string>>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value: truncateTagValue(Value) }));
}

function fromTags(tags: readonly Tag[]): Record<string, string> {
  return Object.fromEntries(tags.flatMap((t) => (t.Key === undefined ? [] : [[t.Key, t.Value ?? '']])));
}
