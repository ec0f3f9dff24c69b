/**
 * The steps of the prewarm-volume machine: create (or restore) the volume, attach it to the
 * helper, fill and verify it through SSM, detach, snapshot, record it in the catalog. Each step
 * is safe to repeat, because the machine retries them.
 */
import { z } from 'zod';
import { fillVolumeCommand, ATTACH_DEVICE, VOLUME_EXIT } from '../agent/volume-commands';
import type { VolumeDeps } from '../composition/volumes';
import { toFieldIssues } from '../domain/run-spec';
import { pollWaitSeconds, type PollLoop } from '../domain/history-budget';
import { RunInvalidError } from '../errors';
import type { VolumeEntry } from '../ports/catalog';
import {
  DATASET_TAG,
  DatasetEmptyError,
  KEEP_TAG,
  SnapshotFailedError,
  SnapshotMissingError,
  VolumeAzMismatchError,
  VolumeFailedError,
  VolumeInUseError,
  VOLUME_TAG,
  VOLUME_TYPES,
} from '../ports/volumes';
import { ownedInput } from './owned-input';
import { finished, HelperIdSchema, lastErrorLine, lastJsonLine } from './volume-helper';

/** Tag naming the prewarm execution that created a volume or snapshot (cleanup finds them by it). */
export const PREWARM_TAG = 'runctl:prewarm';

const DatasetUriSchema = z
  .string()
  .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[^\0]*$/, 'must be an S3 prefix like s3://bucket/datasets/imagenet/')
  .transform((uri) => (uri.endsWith('/') ? uri : `${uri}/`));

/** A prewarm request, as POST /volumes takes it and the machine re-validates it. */
export const PrewarmRequestSchema = z
  .strictObject({
    /** S3 prefix to copy onto the volume. */
    dataset: DatasetUriSchema,
    /** AZ of the volume (runs elsewhere restore from its snapshot). */
    az: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'must be an availability zone like us-east-1a'),
    sizeGiB: z.number().int('must be a whole number of GiB').min(1, 'must be at least 1 GiB').max(16384, 'must be at most 16384 GiB'),
    type: z.enum(VOLUME_TYPES, { error: `must be one of ${VOLUME_TYPES.join(', ')}` }).default('gp3'),
    /** gp3: 3000-16000 (default 3000); io1/io2: required. */
    iops: z.number().int().min(100, 'must be at least 100').max(256000, 'must be at most 256000').optional(),
    /** gp3 only, MiB/s: 125-1000 (default 125). */
    throughput: z.number().int().min(125, 'must be between 125 and 1000 MiB/s').max(1000, 'must be between 125 and 1000 MiB/s').optional(),
    /** Restore this snapshot and sync the dataset onto it (an incremental refresh). */
    fromSnapshot: z.string().regex(/^snap-[0-9a-f]{8,17}$/, 'must be a snapshot id like snap-0abc…').optional(),
  })
  .superRefine((r, ctx) => {
    if (r.throughput !== undefined && r.type !== 'gp3') {
      ctx.addIssue({ code: 'custom', path: ['throughput'], message: 'can only be set for gp3 volumes' });
    }
    if ((r.type === 'io1' || r.type === 'io2') && r.iops === undefined) {
      ctx.addIssue({ code: 'custom', path: ['iops'], message: `is required for ${r.type} volumes` });
    }
    if (r.iops !== undefined && r.type !== 'gp3' && r.type !== 'io1' && r.type !== 'io2') {
      ctx.addIssue({ code: 'custom', path: ['iops'], message: 'can only be set for gp3, io1 and io2 volumes' });
    }
  });
export type PrewarmRequest = z.output<typeof PrewarmRequestSchema>;

/** Validates a prewarm request; RunInvalidError names each bad field. */
export function parsePrewarmRequest(input: unknown): PrewarmRequest {
  const parsed = PrewarmRequestSchema.safeParse(input, { reportInput: true });
  if (parsed.success) return parsed.data;
  const issues = toFieldIssues(parsed.error);
  throw new RunInvalidError(`Invalid volume request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

/**
 * A refresh restores only the snapshot of the owner's own catalogued volume of the dataset: a
 * snapshot id is no capability, and any other (another owner's dataset, anything else in the
 * account) is refused before a volume is made from it.
 */
export function requireOwnSnapshot(request: PrewarmRequest, entry: VolumeEntry | undefined): void {
  if (request.fromSnapshot === undefined || entry?.snapshotId === request.fromSnapshot) return;
  const message =
    entry === undefined
      ? `must be the snapshot of your catalogued volume of ${request.dataset}, and you have none: prewarm it without fromSnapshot`
      : `must be the snapshot of your catalogued volume of ${request.dataset}: ${entry.snapshotId}`;
  throw new RunInvalidError(`Invalid volume request: fromSnapshot: ${message}`, [{ path: 'fromSnapshot', message }]);
}

/** What the machine carries after CreateVolume, under `$.prewarm`. */
export const PrewarmStateSchema = z.object({
  prewarmId: HelperIdSchema,
  /** Whose prewarm it is: the catalog entry it records is that owner's. */
  owner: z.string().min(1),
  dataset: z.string(),
  az: z.string(),
  sizeGiB: z.number().int(),
  type: z.string(),
  fromSnapshot: z.string().optional(),
  volumeId: z.string().min(1),
  /** Prewarm id of the owner's entry for the dataset when this prewarm started: the one RecordVolume may replace. */
  replaces: z.string().min(1).optional(),
});
export type PrewarmState = z.infer<typeof PrewarmStateSchema>;

export const CreatePrewarmVolumeEventSchema = z.object({ prewarmId: HelperIdSchema, input: z.unknown() });

/**
 * CreateVolume: validates the request, checks that a snapshot to restore is the owner's own
 * catalogued one and is complete, creates the volume and waits until it is available.
 */
export async function createPrewarmVolume(
  event: z.infer<typeof CreatePrewarmVolumeEventSchema>,
  deps: VolumeDeps,
): Promise<PrewarmState> {
  const { owner, request: input } = ownedInput(event.input);
  const request = parsePrewarmRequest(input);
  const catalogued = await deps.catalog.getVolume(owner, request.dataset);
  requireOwnSnapshot(request, catalogued);
  if (request.fromSnapshot !== undefined) {
    const snapshot = await deps.volumes.describeSnapshot(request.fromSnapshot);
    if (snapshot === undefined) throw new SnapshotMissingError(`Snapshot ${request.fromSnapshot} does not exist`);
    if (snapshot.state !== 'completed') throw new SnapshotMissingError(`Snapshot ${request.fromSnapshot} is ${snapshot.state}, not completed`);
    if (snapshot.volumeSizeGiB !== undefined && snapshot.volumeSizeGiB > request.sizeGiB) {
      throw new RunInvalidError(`sizeGiB must be at least ${snapshot.volumeSizeGiB}, the size of snapshot ${request.fromSnapshot}`, [
        { path: 'sizeGiB', message: `must be at least ${snapshot.volumeSizeGiB} (the snapshot's size)` },
      ]);
    }
  }
  const volume = await deps.volumes.create({
    availabilityZone: request.az,
    sizeGiB: request.sizeGiB,
    type: request.type,
    iops: request.iops,
    throughput: request.throughput,
    snapshotId: request.fromSnapshot,
    clientToken: `prewarm-${event.prewarmId}`,
    tags: {
      Name: `runctl-dataset-${event.prewarmId}`,
      // The tag every runctl volume and instance carries, which the Lambda permissions are scoped to.
      'runctl:run': event.prewarmId,
      [VOLUME_TAG]: `prewarm:${event.prewarmId}`,
      [PREWARM_TAG]: event.prewarmId,
      [DATASET_TAG]: request.dataset,
      // The catalog keeps this volume on purpose; the reconciler leaves kept volumes alone.
      [KEEP_TAG]: 'true',
    },
  });
  await deps.volumes.waitAvailable(volume.volumeId, deps.config.waiterSeconds);
  return {
    prewarmId: event.prewarmId,
    owner,
    dataset: request.dataset,
    az: volume.availabilityZone,
    sizeGiB: request.sizeGiB,
    type: request.type,
    fromSnapshot: request.fromSnapshot,
    volumeId: volume.volumeId,
    // A retried CreateVolume finds its own entry only if RecordVolume ran: nothing to replace then.
    ...(catalogued === undefined || catalogued.prewarmId === event.prewarmId ? {} : { replaces: catalogued.prewarmId }),
  };
}

export const AttachmentEventSchema = z.object({
  action: z.enum(['attach', 'detach']),
  volumeId: z.string().min(1),
  instanceId: z.string().min(1),
  /** The helper's AZ, checked against the volume's before attaching. */
  availabilityZone: z.string().optional(),
});

/** AttachVolume / DetachVolume of the prewarm helper; both wait for EC2 to finish. */
export async function prewarmAttachment(
  event: z.infer<typeof AttachmentEventSchema>,
  deps: VolumeDeps,
): Promise<{ volumeId: string; instanceId: string; device?: string; attached: boolean }> {
  if (event.action === 'detach') {
    await deps.volumes.detach(event.volumeId, event.instanceId);
    await deps.volumes.waitAvailable(event.volumeId, deps.config.waiterSeconds);
    return { volumeId: event.volumeId, instanceId: event.instanceId, attached: false };
  }
  const volume = await deps.volumes.describe(event.volumeId);
  if (volume === undefined) throw new VolumeFailedError(`Volume ${event.volumeId} no longer exists`);
  if (event.availabilityZone !== undefined && volume.availabilityZone !== event.availabilityZone) {
    throw new VolumeAzMismatchError(`Volume ${event.volumeId} is in ${volume.availabilityZone} and the instance in ${event.availabilityZone}`);
  }
  const elsewhere = volume.attachments.filter((a) => a.instanceId !== event.instanceId && a.state !== 'detached');
  if (elsewhere.length > 0) {
    throw new VolumeInUseError(`Volume ${event.volumeId} is attached to ${elsewhere.map((a) => a.instanceId).join(', ')}`);
  }
  await deps.volumes.attach(event.volumeId, event.instanceId, ATTACH_DEVICE);
  await deps.volumes.waitAttached(event.volumeId, deps.config.waiterSeconds);
  return { volumeId: event.volumeId, instanceId: event.instanceId, device: ATTACH_DEVICE, attached: true };
}

export const FillVolumeEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('start'), prewarm: PrewarmStateSchema, instanceId: z.string().min(1) }),
  z.object({ action: z.literal('check'), instanceId: z.string().min(1), commandId: z.string().min(1), polls: z.number().int().min(0) }),
]);

const FillOutputSchema = z.object({ files: z.number(), bytes: z.number(), sourceFiles: z.number(), sourceBytes: z.number() });

/** `waitSeconds`: WaitForFill's pause before the next poll. */
export type FillResult =
  | { done: false; commandId: string; polls: number; waitSeconds: number }
  | { done: true; commandId: string; polls: number; files: number; bytes: number };

/** Up to a day: SSM's AWS-RunShellScript allows 48 h, and a sync of terabytes takes hours. */
export const FILL_TIMEOUT_SECONDS = 24 * 3600;
/** A first snapshot of a large volume can take as long. */
export const SNAPSHOT_WINDOW_SECONDS = 24 * 3600;
/** The first pauses of WaitForFill and WaitForSnapshot. */
const FILL_POLL_BASE_SECONDS = 30;
const SNAPSHOT_POLL_BASE_SECONDS = 60;

/**
 * The fill loop outlasts the fill command's own timeout (SSM ends it first) in at most
 * `fillMaxPolls` polls: 30 s apart at first, further apart as the copy runs long, so the
 * execution stays inside its history (shared/domain/history-budget.ts).
 */
export function fillLoop(config: Pick<VolumeDeps['config'], 'fillMaxPolls'>): PollLoop {
  return { baseSeconds: FILL_POLL_BASE_SECONDS, windowSeconds: FILL_TIMEOUT_SECONDS + 600, maxPolls: config.fillMaxPolls };
}

/** The snapshot loop: at most `snapshotMaxPolls` polls over a day, a minute apart at first. */
export function snapshotLoop(config: Pick<VolumeDeps['config'], 'snapshotMaxPolls'>): PollLoop {
  return { baseSeconds: SNAPSHOT_POLL_BASE_SECONDS, windowSeconds: SNAPSHOT_WINDOW_SECONDS, maxPolls: config.snapshotMaxPolls };
}

/** FillVolume: starts the fill/verify command on the helper, or reads its outcome. */
export async function fillVolume(event: z.infer<typeof FillVolumeEventSchema>, deps: VolumeDeps): Promise<FillResult> {
  if (event.action === 'start') {
    const script = fillVolumeCommand({
      volumeId: event.prewarm.volumeId,
      datasetUri: event.prewarm.dataset,
      // A restored snapshot already holds a file system; only a new volume may be formatted.
      formatIfBlank: event.prewarm.fromSnapshot === undefined,
    });
    const commandId = await deps.compute.sendCommand(event.instanceId, script, {
      comment: `runctl prewarm ${event.prewarm.prewarmId}`,
      timeoutSeconds: FILL_TIMEOUT_SECONDS,
    });
    return { done: false, commandId, polls: 0, waitSeconds: FILL_POLL_BASE_SECONDS };
  }
  const polls = event.polls + 1;
  const result = finished(await deps.compute.commandResult(event.instanceId, event.commandId));
  if (result === undefined) {
    if (polls >= deps.config.fillMaxPolls) throw new VolumeFailedError(`Fill command ${event.commandId} still running after ${polls} polls`);
    return { done: false, commandId: event.commandId, polls, waitSeconds: pollWaitSeconds(fillLoop(deps.config), polls) };
  }
  const reason = lastErrorLine(result);
  if (result.status !== 'Success') {
    if (result.exitCode === VOLUME_EXIT.datasetEmpty) throw new DatasetEmptyError(reason || 'The dataset prefix is empty');
    throw new VolumeFailedError(`Filling the volume ${result.status}${result.exitCode === undefined ? '' : ` (exit ${result.exitCode})`}: ${reason}`);
  }
  const output = lastJsonLine(result.stdout, FillOutputSchema);
  if (output === undefined) throw new VolumeFailedError(`Fill command ${event.commandId} printed no result line`);
  return { done: true, commandId: event.commandId, polls, files: output.files, bytes: output.bytes };
}

export const SnapshotVolumeEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('start'), prewarm: PrewarmStateSchema }),
  z.object({ action: z.literal('check'), snapshotId: z.string().min(1), polls: z.number().int().min(0) }),
]);

export interface SnapshotResult {
  snapshotId: string;
  completed: boolean;
  progress?: string;
  polls: number;
  /** WaitForSnapshot's pause before the next poll. */
  waitSeconds: number;
}

/** SnapshotVolume: starts the snapshot (once per prewarm, even when retried), or checks on it. */
export async function snapshotVolume(event: z.infer<typeof SnapshotVolumeEventSchema>, deps: VolumeDeps): Promise<SnapshotResult> {
  if (event.action === 'start') {
    const { prewarm } = event;
    const [existing] = await deps.volumes.findTaggedSnapshots(PREWARM_TAG, prewarm.prewarmId);
    const snapshotId =
      existing?.snapshotId ??
      (await deps.volumes.createSnapshot(prewarm.volumeId, {
        description: `runctl dataset ${prewarm.dataset}`,
        tags: { [VOLUME_TAG]: `prewarm:${prewarm.prewarmId}`, [PREWARM_TAG]: prewarm.prewarmId, [DATASET_TAG]: prewarm.dataset },
      }));
    return { snapshotId, completed: false, polls: 0, waitSeconds: SNAPSHOT_POLL_BASE_SECONDS };
  }
  const polls = event.polls + 1;
  const snapshot = await deps.volumes.describeSnapshot(event.snapshotId);
  if (snapshot === undefined) throw new SnapshotFailedError(`Snapshot ${event.snapshotId} disappeared while it was being made`);
  if (snapshot.state === 'error') throw new SnapshotFailedError(`Snapshot ${event.snapshotId} failed`);
  const completed = snapshot.state === 'completed';
  if (!completed && polls >= deps.config.snapshotMaxPolls) {
    throw new SnapshotFailedError(`Snapshot ${event.snapshotId} still ${snapshot.state} (${snapshot.progress ?? '?'}) after ${polls} polls`);
  }
  return { snapshotId: event.snapshotId, completed, progress: snapshot.progress, polls, waitSeconds: pollWaitSeconds(snapshotLoop(deps.config), polls) };
}

export const RecordVolumeEventSchema = z.object({
  prewarm: PrewarmStateSchema,
  fill: z.object({ files: z.number().int().min(0), bytes: z.number().min(0) }),
  snapshot: z.object({ snapshotId: z.string().min(1) }),
});

/**
 * RecordVolume: the owner's catalog entry runs find the dataset by, written only over none, this
 * prewarm's own, or the entry the prewarm started from (Catalog.Conflict otherwise, and the
 * machine's cleanup removes this prewarm's volume and snapshot).
 */
export async function recordVolume(event: z.infer<typeof RecordVolumeEventSchema>, deps: VolumeDeps): Promise<VolumeEntry> {
  const entry: VolumeEntry = {
    owner: event.prewarm.owner,
    datasetUri: event.prewarm.dataset,
    sizeGiB: event.prewarm.sizeGiB,
    az: event.prewarm.az,
    volumeId: event.prewarm.volumeId,
    snapshotId: event.snapshot.snapshotId,
    volumeType: event.prewarm.type,
    bytes: event.fill.bytes,
    files: event.fill.files,
    createdAt: deps.clock().toISOString(),
    prewarmId: event.prewarm.prewarmId,
  };
  await deps.catalog.putVolume(entry, { replaces: event.prewarm.replaces });
  return entry;
}
