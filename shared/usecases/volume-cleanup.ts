/**
 * Compensation of a failed prewarm: every resource the execution made is found by its tags
 * (not by what the failed state managed to return), so a Lambda that died between creating a
 * volume and returning its id still leaves nothing behind.
 */
import { z } from 'zod';
import type { VolumeDeps } from '../composition/volumes';
import { logger } from '../logger';
import { PREWARM_TAG } from './volume-prewarm';
import { HelperIdSchema, terminateHelpers } from './volume-helper';

export const CleanupPrewarmEventSchema = z.object({
  prewarmId: HelperIdSchema,
  /** The helper, when the failed execution had launched it. */
  instanceId: z.string().min(1).optional(),
  error: z.object({ Error: z.string(), Cause: z.string().optional() }).optional(),
});

export interface CleanupSummary {
  terminated: string[];
  detached: string[];
  deletedVolumes: string[];
  deletedSnapshots: string[];
}

/** Detaches and deletes the prewarm's volumes, terminates its helper, deletes its snapshots. */
export async function cleanupPrewarm(event: z.infer<typeof CleanupPrewarmEventSchema>, deps: VolumeDeps): Promise<CleanupSummary> {
  const volumes = await deps.volumes.findTagged(PREWARM_TAG, event.prewarmId);
  const detached: string[] = [];
  for (const volume of volumes) {
    for (const attachment of volume.attachments) {
      if (attachment.state === 'detached') continue;
      // Forced: the helper is being thrown away, so its file system cache does not matter.
      await deps.volumes.detach(volume.volumeId, attachment.instanceId, { force: true });
      detached.push(volume.volumeId);
    }
  }
  const terminated = await terminateHelpers(event.prewarmId, event.instanceId, deps);
  const deletedVolumes: string[] = [];
  for (const volume of volumes) {
    await deps.volumes.waitAvailable(volume.volumeId, deps.config.waiterSeconds);
    await deps.volumes.delete(volume.volumeId);
    deletedVolumes.push(volume.volumeId);
  }
  const deletedSnapshots: string[] = [];
  for (const snapshot of await deps.volumes.findTaggedSnapshots(PREWARM_TAG, event.prewarmId)) {
    await deps.volumes.deleteSnapshot(snapshot.snapshotId);
    deletedSnapshots.push(snapshot.snapshotId);
  }
  logger.info('prewarm cleaned up', { prewarmId: event.prewarmId, error: event.error?.Error, terminated, deletedVolumes, deletedSnapshots });
  return { terminated, detached, deletedVolumes, deletedSnapshots };
}
