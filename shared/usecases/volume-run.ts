/**
 * A run's dataset volume: AttachVolume of the train-run machine gets the run its copy of the
 * catalogued dataset in its instance's AZ (shared/domain/volume-placement.ts decides which),
 * attaches it and mounts it read-only; release at the end of the run frees the catalogued
 * volume and deletes the volumes made for the run, unless the spec keeps them.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ATTACH_DEVICE, mountVolumeCommand, VOLUME_EXIT } from '../agent/volume-commands';
import type { VolumeDeps } from '../composition/volumes';
import type { RunRecord } from '../domain/run-record';
import { decideVolumePlacement, type VolumeObservation } from '../domain/volume-placement';
import { RunCancelledError, StatusConflictError } from '../errors';
import { logger } from '../logger';
import type { VolumeEntry } from '../ports/catalog';
import {
  DATASET_TAG,
  KEEP_TAG,
  SnapshotMissingError,
  VOLUME_TAG,
  VOLUME_TYPES,
  VolumeAzMismatchError,
  VolumeFailedError,
  VolumeInUseError,
  VolumeNotCataloguedError,
} from '../ports/volumes';
import { pollWaitSeconds } from '../domain/history-budget';
import { attemptLoops, COMMAND_POLL_BASE_SECONDS, MOUNT_TIMEOUT_SECONDS } from './attempt-loops';
import { DEFAULT_STEP_TUNING } from './step-deps';
import { requireRun } from './step-event';
import { finished, lastErrorLine, lastJsonLine } from './volume-helper';

/** Tag of the run a volume was made for (the tag the release permissions are scoped to). */
const RUN_TAG = 'runctl:run';

/** EC2's limit on a CreateVolume ClientToken. */
const MAX_CLIENT_TOKEN = 64;

/**
 * Client token of the copy restored for attempt `attempt` of a run in `az`: a retried step finds
 * the same volume. The attempt is part of it because release deletes the copy between attempts,
 * and EC2 answers a token repeated within its idempotency window with the first volume, deleted
 * or not: the next attempt in the same AZ needs a new one.
 */
export function restoredVolumeToken(runId: string, attempt: number, az: string): string {
  const token = `run-${runId}-${attempt}-${az}`;
  return token.length <= MAX_CLIENT_TOKEN ? token : createHash('sha256').update(token).digest('hex');
}

/** The attempt that launched `instanceId` (the newest attempt when the record does not name it). */
function attemptOf(run: RunRecord, instanceId: string): number {
  return run.attempts.find((a) => a.instanceId === instanceId)?.attempt ?? run.attempts.at(-1)?.attempt ?? 1;
}

export interface PreparedRunVolume {
  volumeId: string;
  /** True when the volume was restored for this run (and is deleted with it unless kept). */
  created: boolean;
  initialize: boolean;
  mountPath: string;
  datasetUri: string;
}

async function observe(entry: VolumeEntry | undefined, deps: VolumeDeps): Promise<VolumeObservation | undefined> {
  if (entry === undefined) return undefined;
  const [volume, snapshot] = await Promise.all([deps.volumes.describe(entry.volumeId), deps.volumes.describeSnapshot(entry.snapshotId)]);
  return {
    datasetUri: entry.datasetUri,
    volume:
      volume === undefined
        ? undefined
        : { volumeId: volume.volumeId, az: volume.availabilityZone, available: volume.state === 'available', claimedBy: entry.claimedBy },
    snapshot: snapshot === undefined ? undefined : { snapshotId: snapshot.snapshotId, completed: snapshot.state === 'completed' },
  };
}

const REFUSALS = {
  'Volume.AzMismatch': VolumeAzMismatchError,
  'Volume.InUse': VolumeInUseError,
  'Snapshot.Missing': SnapshotMissingError,
  'Volume.NotCatalogued': VolumeNotCataloguedError,
} as const;

/** Where the run's volume goes: the attempt's instance and its AZ. */
export interface VolumeTarget {
  attempt: number;
  instanceId: string;
  az: string;
}

/**
 * Gives the run a volume with its dataset in the target's AZ, available (or already attached to
 * the target instance, by an earlier try of the same step): the volume catalogued for the run's
 * owner (claimed for the run, conditionally, so two runs cannot both take it) or a fresh restore
 * of its snapshot. Only the owner's own entry is read, so only a snapshot it records is restored.
 * Undefined when the spec asks for no volume. Safe to repeat.
 */
export async function prepareRunVolume(run: RunRecord, target: VolumeTarget, deps: VolumeDeps): Promise<PreparedRunVolume | undefined> {
  const wanted = run.spec.volume;
  if (wanted === undefined) return undefined;
  const { attempt, instanceId, az } = target;
  const entry = await deps.catalog.getVolume(run.owner, wanted.dataset);
  if (entry?.claimedBy === run.runId) {
    // A retried step whose first try attached the catalogued volume: it is not `available`
    // any more, and restoring a copy beside it would be wasted.
    const held = await deps.volumes.describe(entry.volumeId);
    if (held?.attachments.some((a) => a.instanceId === instanceId)) {
      return { volumeId: entry.volumeId, created: false, initialize: false, mountPath: wanted.mountPath, datasetUri: wanted.dataset };
    }
  }
  const request = { runId: run.runId, instanceAz: az, allowedAzs: run.spec.instance.availabilityZones, initialize: wanted.initialize };
  let placement = decideVolumePlacement(await observe(entry, deps), request);
  if (placement.action === 'use-catalogued' && entry !== undefined) {
    if (await deps.catalog.claimVolume(run.owner, wanted.dataset, placement.volumeId, run.runId)) {
      return { volumeId: placement.volumeId, created: false, initialize: false, mountPath: wanted.mountPath, datasetUri: wanted.dataset };
    }
    // Another run claimed it between the read and the claim: decide again, knowing that.
    const observed = await observe(entry, deps);
    placement = decideVolumePlacement(
      observed?.volume === undefined ? observed : { ...observed, volume: { ...observed.volume, claimedBy: 'another run' } },
      request,
    );
  }
  if (placement.action === 'refuse') throw new REFUSALS[placement.error](placement.message);
  if (placement.action !== 'restore' || entry === undefined) throw new VolumeFailedError(`Unexpected placement for ${wanted.dataset}`);
  const volume = await deps.volumes.create({
    availabilityZone: az,
    sizeGiB: entry.sizeGiB,
    type: VOLUME_TYPES.find((t) => t === entry.volumeType) ?? 'gp3',
    snapshotId: placement.snapshotId,
    clientToken: restoredVolumeToken(run.runId, attempt, az),
    tags: {
      Name: `runctl-${run.runId}-dataset`,
      [RUN_TAG]: run.runId,
      [VOLUME_TAG]: `run:${run.runId}`,
      [DATASET_TAG]: wanted.dataset,
      ...(wanted.keep ? { [KEEP_TAG]: 'true' } : {}),
    },
  });
  // The same token finds the copy an earlier try of this step may already have attached.
  if (!volume.attachments.some((a) => a.instanceId === instanceId)) await deps.volumes.waitAvailable(volume.volumeId, deps.config.waiterSeconds);
  logger.info('restored a dataset volume for the run', { runId: run.runId, volumeId: volume.volumeId, reason: placement.reason });
  return { volumeId: volume.volumeId, created: true, initialize: placement.initialize, mountPath: wanted.mountPath, datasetUri: wanted.dataset };
}

export interface ReleasedRunVolumes {
  detached: string[];
  deleted: string[];
  kept: string[];
}

/**
 * Frees what the run held: its claim on the catalogued volume (detached from the run's
 * instances), and the volumes restored for it, deleted unless the spec or the tag keeps them.
 */
export async function releaseRunVolume(run: RunRecord, deps: VolumeDeps): Promise<ReleasedRunVolumes> {
  const released: ReleasedRunVolumes = { detached: [], deleted: [], kept: [] };
  const wanted = run.spec.volume;
  if (wanted === undefined) return released;
  const instances = new Set(run.attempts.flatMap((a) => (a.instanceId === undefined ? [] : [a.instanceId])));
  const entry = await deps.catalog.getVolume(run.owner, wanted.dataset);
  if (entry?.claimedBy === run.runId) {
    const volume = await deps.volumes.describe(entry.volumeId);
    for (const attachment of volume?.attachments ?? []) {
      if (!instances.has(attachment.instanceId)) continue;
      await deps.volumes.detach(entry.volumeId, attachment.instanceId);
      released.detached.push(entry.volumeId);
    }
    if (released.detached.length > 0) await deps.volumes.waitAvailable(entry.volumeId, deps.config.waiterSeconds);
    await deps.catalog.releaseVolume(run.owner, wanted.dataset, run.runId);
  }
  const restored = (await deps.volumes.findTagged(VOLUME_TAG, `run:${run.runId}`)).filter((v) => v.tags[RUN_TAG] === run.runId);
  for (const volume of restored) {
    for (const attachment of volume.attachments) {
      // Read-only mounts: nothing to flush, and the instance is being released anyway.
      await deps.volumes.detach(volume.volumeId, attachment.instanceId, { force: true });
      released.detached.push(volume.volumeId);
    }
    if (wanted.keep || volume.tags[KEEP_TAG] === 'true') {
      released.kept.push(volume.volumeId);
      continue;
    }
    await deps.volumes.waitAvailable(volume.volumeId, deps.config.waiterSeconds);
    await deps.volumes.delete(volume.volumeId);
    released.deleted.push(volume.volumeId);
  }
  return released;
}

const RunIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,80}$/);

export const RunVolumeEventSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('attach'), runId: RunIdSchema, instanceId: z.string().min(1), availabilityZone: z.string().min(1) }),
  z.object({ action: z.literal('check'), runId: RunIdSchema, instanceId: z.string().min(1), volumeId: z.string().min(1), commandId: z.string().min(1), polls: z.number().int().min(0) }),
  z.object({ action: z.literal('release'), runId: RunIdSchema }),
]);

export type RunVolumeResult =
  | { skipped: true; done: true }
  | { skipped: false; done: false; volumeId: string; commandId: string; polls: number; waitSeconds: number }
  | { skipped: false; done: true; volumeId?: string; mountPath?: string; polls?: number; released?: ReleasedRunVolumes };

const MountOutputSchema = z.object({ device: z.string(), mountPath: z.string(), initialized: z.boolean() });


/**
 * STARTING → ATTACHING_VOLUME. Conditional on the status, and a run already ATTACHING_VOLUME (a
 * retried step) stays there. A run cancelled meanwhile ends its attempt as a cancel does.
 */
async function markAttaching(run: RunRecord, deps: VolumeDeps): Promise<void> {
  try {
    await deps.store.transition(run.runId, ['STARTING', 'ATTACHING_VOLUME'], 'ATTACHING_VOLUME', {
      statusReason: `Attaching the dataset volume of ${run.spec.volume?.dataset ?? 'the run'}`,
    });
  } catch (error) {
    if (error instanceof StatusConflictError && error.actual === 'CANCELLING') {
      throw new RunCancelledError('Run was cancelled during AttachVolume', { cause: error });
    }
    throw error;
  }
}

/**
 * The train-run machine's AttachVolume task (attach, then check in a Wait loop) and the
 * release of the run's volumes (from ReleaseResources at the end of the run).
 */
export async function runVolume(event: z.infer<typeof RunVolumeEventSchema>, deps: VolumeDeps): Promise<RunVolumeResult> {
  if (event.action === 'release') {
    const run = await requireRun(deps.store, event.runId);
    if (run.spec.volume === undefined) return { skipped: true, done: true };
    return { skipped: false, done: true, released: await releaseRunVolume(run, deps) };
  }
  if (event.action === 'attach') {
    const run = await requireRun(deps.store, event.runId);
    if (run.spec.volume === undefined) return { skipped: true, done: true };
    await markAttaching(run, deps);
    const target = { attempt: attemptOf(run, event.instanceId), instanceId: event.instanceId, az: event.availabilityZone };
    const prepared = await prepareRunVolume(run, target, deps);
    if (prepared === undefined) return { skipped: true, done: true };
    await deps.volumes.attach(prepared.volumeId, event.instanceId, ATTACH_DEVICE);
    await deps.volumes.waitAttached(prepared.volumeId, deps.config.waiterSeconds);
    const commandId = await deps.compute.sendCommand(
      event.instanceId,
      mountVolumeCommand({ volumeId: prepared.volumeId, mountPath: prepared.mountPath, initialize: prepared.initialize }),
      { comment: `runctl mount ${event.runId}`, timeoutSeconds: MOUNT_TIMEOUT_SECONDS },
    );
    return { skipped: false, done: false, volumeId: prepared.volumeId, commandId, polls: 0, waitSeconds: COMMAND_POLL_BASE_SECONDS };
  }
  // The poll budget is the run's share of its execution's history (see attempt-loops.ts).
  const loop = attemptLoops((await requireRun(deps.store, event.runId)).spec, DEFAULT_STEP_TUNING).volume;
  const polls = event.polls + 1;
  const result = finished(await deps.compute.commandResult(event.instanceId, event.commandId));
  if (result === undefined) {
    if (loop === undefined || polls >= loop.maxPolls) {
      throw new VolumeFailedError(`Mounting the dataset volume: command ${event.commandId} still running after ${polls} polls`);
    }
    return { skipped: false, done: false, volumeId: event.volumeId, commandId: event.commandId, polls, waitSeconds: pollWaitSeconds(loop, polls) };
  }
  if (result.status !== 'Success') {
    const reason = lastErrorLine(result);
    if (result.exitCode === VOLUME_EXIT.notBlank) throw new VolumeFailedError(`The dataset volume has no file system: ${reason}`);
    throw new VolumeFailedError(`Mounting the dataset volume ${result.status} (exit ${result.exitCode ?? '?'}): ${reason}`);
  }
  const output = lastJsonLine(result.stdout, MountOutputSchema);
  return { skipped: false, done: true, volumeId: event.volumeId, mountPath: output?.mountPath, polls };
}
