/**
 * EBS volumes and snapshots: the dataset volumes that prewarm-volume fills and that runs attach.
 * On AWS, shared/adapters/ec2-volumes.ts. Every mutation is safe to repeat: creation is keyed by a
 * client token, and detaching, deleting or snapshotting something already done is success.
 */
import { RunctlError } from '../errors';

/** Tag on every volume and snapshot runctl creates; its value says who asked (`prewarm:<id>`, `run:<runId>`). */
export const VOLUME_TAG = 'runctl:volume';
/** Dataset URI a volume or snapshot holds (truncated to EC2's 256-character tag value limit). */
export const DATASET_TAG = 'runctl:dataset';
/** Set on a volume created for a run whose spec says `volume.keep`: release leaves it. */
export const KEEP_TAG = 'runctl:keep';

export const VOLUME_TYPES = ['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1'] as const;
export type VolumeType = (typeof VOLUME_TYPES)[number];

export type VolumeState = 'creating' | 'available' | 'in-use' | 'deleting' | 'deleted' | 'error';

export interface VolumeAttachmentInfo {
  instanceId: string;
  device?: string;
  state: 'attaching' | 'attached' | 'detaching' | 'detached' | 'busy';
}

export interface VolumeInfo {
  volumeId: string;
  availabilityZone: string;
  state: VolumeState;
  sizeGiB: number;
  type?: string;
  snapshotId?: string;
  attachments: VolumeAttachmentInfo[];
  tags: Record<string, string>;
}

export interface CreateVolumeRequest {
  availabilityZone: string;
  sizeGiB: number;
  type: VolumeType;
  iops?: number;
  /** MiB/s; gp3 only. */
  throughput?: number;
  /** Restore from this snapshot instead of creating a blank volume. */
  snapshotId?: string;
  /** Idempotency: a repeated create with the same token returns the same volume. */
  clientToken: string;
  tags: Readonly<Record<string, string>>;
}

export type SnapshotState = 'pending' | 'completed' | 'error' | 'recoverable' | 'recovering';

export interface SnapshotInfo {
  snapshotId: string;
  state: SnapshotState;
  /** e.g. `42%`. */
  progress?: string;
  volumeSizeGiB?: number;
  tags: Record<string, string>;
}

export interface Volumes {
  /** Creates (or restores) a volume tagged with this stack; a repeated call with the same client token returns the first volume. */
  create(request: CreateVolumeRequest): Promise<VolumeInfo>;
  /** The volume, or undefined when EC2 does not know it. */
  describe(volumeId: string): Promise<VolumeInfo | undefined>;
  /** This stack's volumes carrying tag `key` = `value` that are not deleted. */
  findTagged(key: string, value: string): Promise<VolumeInfo[]>;
  /** Waits until the volume is `available`; throws Volume.Failed when it ends in `error`. */
  waitAvailable(volumeId: string, maxWaitSeconds: number): Promise<void>;
  /** Attaches at `device`; Volume.InUse when attached elsewhere, Volume.AzMismatch across AZs. */
  attach(volumeId: string, instanceId: string, device: string): Promise<void>;
  /** Waits until the volume is `in-use` (attached). */
  waitAttached(volumeId: string, maxWaitSeconds: number): Promise<void>;
  /** Detaches from `instanceId`; a volume not attached there is success. */
  detach(volumeId: string, instanceId: string, options?: { force?: boolean }): Promise<void>;
  /** Deletes a volume; one already gone is success. */
  delete(volumeId: string): Promise<void>;
  /** Starts a snapshot of the volume, tagged with this stack; returns its id. */
  createSnapshot(volumeId: string, options: { description: string; tags: Readonly<Record<string, string>> }): Promise<string>;
  /** The snapshot, or undefined when EC2 does not know it. */
  describeSnapshot(snapshotId: string): Promise<SnapshotInfo | undefined>;
  /** This stack's snapshots carrying tag `key` = `value`. */
  findTaggedSnapshots(key: string, value: string): Promise<SnapshotInfo[]>;
  /** Deletes a snapshot; one already gone is success. */
  deleteSnapshot(snapshotId: string): Promise<void>;
}

/** The volume is attached to another instance (or claimed by another run). */
export class VolumeInUseError extends RunctlError {
  override name = 'Volume.InUse';
}

/** The volume is in another AZ than the instance (or than every subnet the run is pinned to). */
export class VolumeAzMismatchError extends RunctlError {
  override name = 'Volume.AzMismatch';
}

/** The snapshot to restore from does not exist (deleted, or a typo). */
export class SnapshotMissingError extends RunctlError {
  override name = 'Snapshot.Missing';
}

/** The dataset prefix lists no object: nothing to pre-warm. */
export class DatasetEmptyError extends RunctlError {
  override name = 'Dataset.Empty';
}

/** No catalogued volume for the dataset a run asked for. */
export class VolumeNotCataloguedError extends RunctlError {
  override name = 'Volume.NotCatalogued';
}

/** Creating, filling, verifying or mounting a volume failed for a reason no retry fixes. */
export class VolumeFailedError extends RunctlError {
  override name = 'Volume.Failed';
}

/** The snapshot ended in `error`, or did not complete within the poll budget. */
export class SnapshotFailedError extends RunctlError {
  override name = 'Snapshot.Failed';
}
