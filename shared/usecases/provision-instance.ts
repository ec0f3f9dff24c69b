import { z } from 'zod';
import type { Placement } from '../domain/recovery';
import type { Replacement, RunRecord } from '../domain/run-record';
import type { RunSpec } from '../domain/run-spec';
import { preferredAzForVolume } from '../domain/volume-placement';
import { CapacityUnavailableError, PrecheckFailedError } from '../errors';
import type { Catalog } from '../ports/catalog';
import { instanceGone, type LaunchRequest } from '../ports/compute';
import type { TransitionPatch } from '../ports/run-store';
import type { Volumes } from '../ports/volumes';
import { pauseAfterWaiting } from '../domain/history-budget';
import { attemptLoops } from './attempt-loops';
import { nodeCount } from '../domain/multi-node';
import { NODES_TAG } from '../ports/instance-tags';
import { provisionNodes } from './provision-nodes';
import type { StepDeps } from './step-deps';
import { requireRun } from './step-event';
import { PlacementSchema, RunIdSchema } from './train-run-state';

export const ProvisionInstanceEventSchema = z.object({
  runId: RunIdSchema,
  attempt: z.number().int().min(1),
  resumeFrom: z.string().nullable(),
  placement: PlacementSchema.nullable(),
  waitingSince: z.iso.datetime().nullable(),
  /** Set by AdoptReplacement, after the AwaitReplacement wait: take the replacement over as it is, without waiting again. */
  replacementAwaited: z.boolean().optional(),
});
export type ProvisionInstanceEvent = z.infer<typeof ProvisionInstanceEventSchema>;

export interface LaunchedInstanceState {
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  spot: boolean;
}

/**
 * `usesVolume`: the spec names a dataset volume, so the machine attaches it and releases it at the end.
 * `prepared`: the instance was launched on the spot warning and is already online (the machine
 * skips its readiness wait); PrefetchData then finds whether its data is copied too.
 * `awaitReplacement`: that instance is still being prepared: the machine waits for it
 * (AwaitReplacement) and then comes back through AdoptReplacement.
 */
export type ProvisionResult =
  | { launched: true; instance: LaunchedInstanceState; waitingSince: null; usesVolume: boolean; prepared?: boolean }
  | { launched: false; awaitReplacement: true; replacementInstanceId: string; waitingSince: null; usesVolume: boolean }
  | { launched: false; retryInSeconds: number; waitingSince: string; nextTryAt: string; usesVolume: boolean };

/** What ProvisionInstance reads to start a volume run next to its catalogued dataset volume. */
export interface VolumeAzDeps {
  catalog?: Pick<Catalog, 'getVolume'>;
  volumes?: Pick<Volumes, 'describe'>;
}

/**
 * The AZ to pin the launch to: that of the dataset volume catalogued for the run's owner when it is free (so
 * AttachVolume claims it instead of restoring a copy from the snapshot). Only on the first try
 * of an attempt: once the run waits for capacity, any AZ will do, and AttachVolume restores.
 */
async function volumeAz(owner: string, spec: RunSpec, allowedAzs: readonly string[], event: ProvisionInstanceEvent, deps: VolumeAzDeps): Promise<string | undefined> {
  if (spec.volume === undefined || event.waitingSince !== null) return undefined;
  if (deps.catalog === undefined || deps.volumes === undefined) return undefined;
  const entry = await deps.catalog.getVolume(owner, spec.volume.dataset);
  // Nothing catalogued: AttachVolume refuses the run with Volume.NotCatalogued.
  if (entry === undefined) return undefined;
  const volume = await deps.volumes.describe(entry.volumeId);
  return preferredAzForVolume(
    {
      datasetUri: entry.datasetUri,
      volume:
        volume === undefined
          ? undefined
          : { volumeId: volume.volumeId, az: volume.availabilityZone, available: volume.state === 'available', claimedBy: entry.claimedBy },
    },
    allowedAzs,
  );
}

/**
 * ProvisionInstance: launches attempt n's instance (the compute adapter walks the type and
 * subnet lists). When nothing has capacity the run says so (WAITING_FOR_CAPACITY, with the next
 * try) and the machine waits and comes back, until `recovery.maxWaitForCapacity` has passed.
 */
export async function provisionInstance(event: ProvisionInstanceEvent, deps: StepDeps & VolumeAzDeps): Promise<ProvisionResult> {
  const { runId, attempt } = event;
  const record = await requireRun(deps.store, runId);
  const known = record.attempts.find((a) => a.attempt === attempt);
  if (record.status === 'STARTING' && known?.instanceId !== undefined) {
    // A retried invocation whose first run got this far: report the same instance.
    return { launched: true, instance: instanceState(known.instanceId, known), waitingSince: null, usesVolume: record.spec.volume !== undefined };
  }
  const spec = record.spec;
  const usesVolume = spec.volume !== undefined;
  const placement = event.placement ?? {
    instanceTypes: spec.instance.types,
    availabilityZones: spec.instance.availabilityZones,
    spot: spec.instance.spot,
  };
  if (nodeCount(spec) > 1) return provisionNodes(event, record, placement, launchRequestFor(record, attempt, placement), deps);
  const adopted = await adoptReplacement(event, record, deps);
  if (adopted !== undefined) return adopted;
  const pinnedAz = await volumeAz(record.owner, spec, placement.availabilityZones, event, deps);
  await deps.store.transition(runId, ['VALIDATING', 'BUILDING_IMAGE', 'RECOVERING', 'WAITING_FOR_CAPACITY', 'PROVISIONING'], 'PROVISIONING', {
    statusReason:
      `Launching attempt ${attempt} (${placement.instanceTypes.join(', ')}${placement.spot ? ', spot' : ''}` +
      `${pinnedAz === undefined ? '' : `, in ${pinnedAz} with the dataset volume`})`,
  });

  let launched;
  try {
    const request = launchRequestFor(record, attempt, placement);
    try {
      launched = await deps.compute.launch({ ...request, availabilityZone: pinnedAz });
    } catch (error) {
      // No usable subnet in the volume's AZ: launch anywhere; AttachVolume restores a copy there.
      if (pinnedAz === undefined || !(error instanceof PrecheckFailedError)) throw error;
      launched = await deps.compute.launch(request);
    }
  } catch (error) {
    if (!(error instanceof CapacityUnavailableError)) throw error;
    return waitForCapacity(event, spec, { usesVolume, refusal: error, what: placement.instanceTypes.join(', '), reason: error.message }, deps);
  }

  await deps.store.appendAttempt(runId, {
    attempt,
    instanceId: launched.instanceId,
    instanceType: launched.instanceType,
    availabilityZone: launched.availabilityZone,
    spot: launched.spot,
    startedAt: launched.launchedAt,
    resumeFrom: event.resumeFrom ?? undefined,
  });
  await deps.store.transition(runId, 'PROVISIONING', 'STARTING', {
    statusReason: `Instance ${launched.instanceId} (${launched.instanceType} in ${launched.availabilityZone}${launched.spot ? ', spot' : ''}) is starting`,
  });
  return { launched: true, instance: instanceState(launched.instanceId, launched), waitingSince: null, usesVolume };
}

/**
 * No capacity now: the run says so (WAITING_FOR_CAPACITY, the reason and the next try) and the
 * machine waits and comes back, until `recovery.maxWaitForCapacity` has passed. `what` names what
 * found no capacity; `reason` is the status reason's first part.
 */
export async function waitForCapacity(
  event: ProvisionInstanceEvent,
  spec: RunSpec,
  wanted: { usesVolume: boolean; refusal: CapacityUnavailableError | undefined; what: string; reason: string },
  deps: StepDeps,
): Promise<ProvisionResult> {
  const now = deps.clock();
  const since = event.waitingSince ? new Date(event.waitingSince) : now;
  const waited = (now.getTime() - since.getTime()) / 1000;
  const limit = spec.recovery.maxWaitForCapacity;
  if (waited >= limit) {
    throw new CapacityUnavailableError(`No capacity for ${wanted.what} within recovery.maxWaitForCapacity (${limit} s): ${wanted.reason}`, {
      cause: wanted.refusal,
    });
  }
  // The pause grows with the time waited when the run's event budget allows fewer tries than
  // the capacity wait holds at the base pause (see attempt-loops.ts): the loop stays bounded.
  const loop = attemptLoops(spec, deps.config).capacity;
  const retryInSeconds = Math.max(1, Math.min(pauseAfterWaiting(loop, waited), Math.ceil(limit - waited)));
  const nextTryAt = new Date(now.getTime() + retryInSeconds * 1000).toISOString();
  await deps.store.transition(event.runId, ['PROVISIONING', 'WAITING_FOR_CAPACITY'], 'WAITING_FOR_CAPACITY', {
    statusReason: `${wanted.reason}; next try at ${nextTryAt}`,
  });
  return { launched: false, retryInSeconds, waitingSince: since.toISOString(), nextTryAt, usesVolume: wanted.usesVolume };
}

/** The RunInstances request of attempt `attempt` under `placement` (ProvisionInstance, and the replacement launched on a warning). */
export function launchRequestFor(record: RunRecord, attempt: number, placement: Placement): LaunchRequest {
  const spec = record.spec;
  return {
    runId: record.runId,
    attempt,
    instanceTypes: placement.instanceTypes,
    subnets: spec.instance.subnets,
    spot: placement.spot,
    onDemandFallback: spec.instance.onDemandFallback,
    maxSpotPriceUsd: spec.instance.maxSpotPriceUsd,
    ami: spec.instance.ami,
    instanceProfile: spec.instance.instanceProfile,
    rootVolumeGiB: spec.instance.rootVolumeGiB,
    // runctl:owner lets the spot-warning handler write the status index in one call;
    // runctl:nodes tells the event handlers a run has other nodes to signal.
    tags: { ...spec.tags, 'runctl:owner': record.owner, ...(nodeCount(spec) > 1 ? { [NODES_TAG]: String(nodeCount(spec)) } : {}) },
  };
}

/**
 * The instance launched for this attempt on the previous attempt's spot warning, if it is still
 * alive: recorded as this attempt's instead of launching another (its client token was this
 * attempt's). A replacement that died or was released is ignored, and the attempt launches as usual.
 * One still being prepared (its data not yet copied) is waited for first (AwaitReplacement), so
 * that training starts the moment it is ready rather than at the next readiness or prefetch poll;
 * after that wait (`replacementAwaited`) it is taken over as it is.
 */
async function adoptReplacement(event: ProvisionInstanceEvent, record: RunRecord, deps: StepDeps): Promise<ProvisionResult | undefined> {
  const live = await liveReplacement(record, event.attempt, deps);
  if (live === undefined) return undefined;
  const { replacement, ready } = live;
  if (replacement.dataReadyAt === undefined && event.replacementAwaited !== true) {
    return waitForReplacement(event, replacement, { statusReason: `Attempt ${event.attempt} waits for ${replacement.instanceId}, launched on the spot warning (${preparing(ready)})` }, deps);
  }
  await deps.store.transition(event.runId, ['RECOVERING', 'WAITING_FOR_CAPACITY', 'PROVISIONING'], 'PROVISIONING', {
    statusReason: `Attempt ${event.attempt} takes over ${replacement.instanceId}, launched on the spot warning`,
  });
  await deps.store.appendAttempt(event.runId, {
    attempt: event.attempt,
    instanceId: replacement.instanceId,
    instanceType: replacement.instanceType,
    availabilityZone: replacement.availabilityZone,
    spot: replacement.spot,
    startedAt: replacement.launchedAt,
    resumeFrom: event.resumeFrom ?? undefined,
  });
  await deps.store.transition(event.runId, 'PROVISIONING', 'STARTING', {
    statusReason: `Instance ${replacement.instanceId} (${replacement.instanceType} in ${replacement.availabilityZone}${replacement.spot ? ', spot' : ''}) ${ready ? 'is online' : 'is starting'}`,
  });
  return {
    launched: true,
    instance: instanceState(replacement.instanceId, replacement),
    waitingSince: null,
    usesVolume: false,
    prepared: ready,
  };
}

/** The replacement launched on attempt `attempt - 1`'s warning for attempt `attempt`, unless it was released. */
export function unreleasedReplacement(record: RunRecord, attempt: number): Replacement | undefined {
  const replacement = record.attempts.find((a) => a.attempt === attempt - 1)?.replacement;
  return replacement?.attempt === attempt && replacement.releasedAt === undefined ? replacement : undefined;
}

/** That replacement if its instance is still alive (one that died is ignored), and whether it is online. */
export async function liveReplacement(record: RunRecord, attempt: number, deps: Pick<StepDeps, 'compute'>): Promise<{ replacement: Replacement; ready: boolean } | undefined> {
  const replacement = unreleasedReplacement(record, attempt);
  if (replacement === undefined) return undefined;
  const readiness = await deps.compute.readiness(replacement.instanceId);
  return instanceGone(readiness.state) ? undefined : { replacement, ready: readiness.ready };
}

/** What the replacement is doing while the attempt waits for it. */
export const preparing = (ready: boolean): string => (ready ? 'online, copying data' : 'booting');

/**
 * The replacement is still booting or copying: the run says so (`patch`) and the machine waits
 * for it (AwaitReplacement), then comes back with `replacementAwaited` to take it over as it is.
 */
export async function waitForReplacement(event: ProvisionInstanceEvent, replacement: Replacement, patch: TransitionPatch, deps: StepDeps): Promise<ProvisionResult> {
  await deps.store.transition(event.runId, ['RECOVERING', 'WAITING_FOR_CAPACITY', 'PROVISIONING'], 'PROVISIONING', patch);
  return { launched: false, awaitReplacement: true, replacementInstanceId: replacement.instanceId, waitingSince: null, usesVolume: false };
}

function instanceState(
  instanceId: string,
  from: { instanceType?: string; availabilityZone?: string; spot: boolean },
): LaunchedInstanceState {
  return {
    instanceId,
    instanceType: from.instanceType ?? 'unknown',
    availabilityZone: from.availabilityZone ?? 'unknown',
    spot: from.spot,
  };
}
