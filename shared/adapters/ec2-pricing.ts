/**
 * The reconciler's read-only EC2 queries: spot price history (pricing), and the volumes and
 * snapshots runctl tagged (the stray-storage report). Nothing here mutates anything.
 */
import {
  DescribeSnapshotsCommand,
  DescribeSpotPriceHistoryCommand,
  DescribeVolumesCommand,
  _InstanceType,
  type EC2Client,
  type Filter,
  type Tag,
} from '@aws-sdk/client-ec2';
import type { PricePoint } from '../domain/cost';
import { onDemandPricePerHour } from '../domain/pricing';
import type { Pricing } from '../ports/pricing';
import { STACK_TAG } from '../ports/stack-tag';
import type { StorageInventory, TaggedSnapshot, TaggedVolume } from '../usecases/reconcile';
import { translateAwsError, withThrottleRetry, type ThrottleRetryOptions } from './aws-errors';

/** Spot prices change a few times a day; 3 pages of 1000 points cover months of one type in one AZ. */
const MAX_SPOT_HISTORY_PAGES = 3;
const SPOT_HISTORY_PAGE_SIZE = 1000;
/** Bounds one stray-storage listing per pass: 5 pages of 500 volumes (or 1000 snapshots). */
const MAX_STORAGE_PAGES = 5;

const INSTANCE_TYPES: ReadonlySet<string> = new Set(Object.values(_InstanceType));

function isInstanceType(value: string): value is _InstanceType {
  return INSTANCE_TYPES.has(value);
}

/** Pricing from the static on-demand table and the EC2 spot price history of one region. */
export class Ec2Pricing implements Pricing {
  constructor(
    private readonly ec2: EC2Client,
    private readonly region: string,
    private readonly options: { throttleRetry?: ThrottleRetryOptions } = {},
  ) {}

  onDemandPerHour(instanceType: string): number | undefined {
    return onDemandPricePerHour(instanceType, this.region);
  }

  async spotPriceHistory(instanceType: string, availabilityZone: string, from: Date, to: Date): Promise<PricePoint[]> {
    if (!isInstanceType(instanceType)) return [];
    const points: PricePoint[] = [];
    let nextToken: string | undefined;
    for (let page = 0; page < MAX_SPOT_HISTORY_PAGES; page += 1) {
      const command = new DescribeSpotPriceHistoryCommand({
        InstanceTypes: [instanceType],
        AvailabilityZone: availabilityZone,
        ProductDescriptions: ['Linux/UNIX'],
        StartTime: from,
        EndTime: to,
        MaxResults: SPOT_HISTORY_PAGE_SIZE,
        NextToken: nextToken,
      });
      const output = await this.send(() => this.ec2.send(command), `DescribeSpotPriceHistory ${instanceType} ${availabilityZone}`);
      for (const price of output.SpotPriceHistory ?? []) {
        const priceUsd = Number(price.SpotPrice);
        if (price.Timestamp === undefined || !Number.isFinite(priceUsd)) continue;
        points.push({ at: price.Timestamp.toISOString(), priceUsd });
      }
      nextToken = output.NextToken === '' ? undefined : output.NextToken;
      if (nextToken === undefined) break;
    }
    return points.sort((a, b) => a.at.localeCompare(b.at));
  }

  private async send<T>(call: () => Promise<T>, operation: string): Promise<T> {
    try {
      return await withThrottleRetry(call, this.options.throttleRetry ?? { attempts: 3, baseMs: 250 });
    } catch (error) {
      throw translateAwsError(error, operation);
    }
  }
}

function tagMap(tags: Tag[] | undefined): Record<string, string> {
  const map: Record<string, string> = {};
  for (const tag of tags ?? []) if (tag.Key !== undefined) map[tag.Key] = tag.Value ?? '';
  return map;
}

/** Volumes and snapshots this stack tagged, through DescribeVolumes / DescribeSnapshots. */
export class Ec2StorageInventory implements StorageInventory {
  constructor(
    private readonly ec2: EC2Client,
    private readonly options: { stack: string; throttleRetry?: ThrottleRetryOptions },
  ) {}

  /**
   * Everything this stack tagged: instances' root volumes, dataset volumes and their snapshots
   * all carry its stack tag. Another stage's storage is never listed, so never reported here.
   */
  private filters(): Filter[] {
    return [{ Name: `tag:${STACK_TAG}`, Values: [this.options.stack] }];
  }

  async listTaggedVolumes(): Promise<{ items: TaggedVolume[]; complete: boolean }> {
    const items: TaggedVolume[] = [];
    let nextToken: string | undefined;
    for (let page = 0; page < MAX_STORAGE_PAGES; page += 1) {
      const command = new DescribeVolumesCommand({
        Filters: this.filters(),
        MaxResults: 500,
        NextToken: nextToken,
      });
      const output = await this.send(() => this.ec2.send(command), 'DescribeVolumes tagged runctl');
      for (const volume of output.Volumes ?? []) {
        if (volume.VolumeId === undefined) continue;
        items.push({
          volumeId: volume.VolumeId,
          state: volume.State ?? 'unknown',
          availabilityZone: volume.AvailabilityZone ?? '',
          sizeGiB: volume.Size ?? 0,
          createdAt: volume.CreateTime?.toISOString(),
          attachedTo: (volume.Attachments ?? []).flatMap((a) => (a.InstanceId === undefined ? [] : [a.InstanceId])),
          tags: tagMap(volume.Tags),
        });
      }
      nextToken = output.NextToken === '' ? undefined : output.NextToken;
      if (nextToken === undefined) return { items, complete: true };
    }
    return { items, complete: false };
  }

  async listTaggedSnapshots(): Promise<{ items: TaggedSnapshot[]; complete: boolean }> {
    const items: TaggedSnapshot[] = [];
    let nextToken: string | undefined;
    for (let page = 0; page < MAX_STORAGE_PAGES; page += 1) {
      const command = new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: this.filters(),
        MaxResults: 1000,
        NextToken: nextToken,
      });
      const output = await this.send(() => this.ec2.send(command), 'DescribeSnapshots tagged runctl');
      for (const snapshot of output.Snapshots ?? []) {
        if (snapshot.SnapshotId === undefined) continue;
        items.push({
          snapshotId: snapshot.SnapshotId,
          state: snapshot.State ?? 'unknown',
          volumeSizeGiB: snapshot.VolumeSize ?? 0,
          createdAt: snapshot.StartTime?.toISOString(),
          tags: tagMap(snapshot.Tags),
        });
      }
      nextToken = output.NextToken === '' ? undefined : output.NextToken;
      if (nextToken === undefined) return { items, complete: true };
    }
    return { items, complete: false };
  }

  private async send<T>(call: () => Promise<T>, operation: string): Promise<T> {
    try {
      return await withThrottleRetry(call, this.options.throttleRetry ?? { attempts: 3, baseMs: 250 });
    } catch (error) {
      throw translateAwsError(error, operation);
    }
  }
}
