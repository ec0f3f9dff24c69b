import { z } from 'zod';
import { RunctlError } from '../errors';
import type { RecordStepDeps } from './step-deps';
import { RunIdSchema } from './train-run-state';

/** Training exited 0 but its outputs are not in S3: the agent's upload did not complete. */
export class ArtifactsMissingError extends RunctlError {
  override name = 'Artifacts.Missing';
}

export const FinalizeArtifactsEventSchema = z.object({
  runId: RunIdSchema,
  attempt: z.number().int().min(1),
});
export type FinalizeArtifactsEvent = z.infer<typeof FinalizeArtifactsEventSchema>;

export interface FinalizeResult {
  /** S3 URI of the outputs manifest. */
  outputsManifest: string;
  outputsBytes: number;
  /** S3 URI of the final checkpoint; null when the script never checkpointed. */
  finalCheckpoint: string | null;
}

/**
 * FinalizeArtifacts: the script exited 0; verifies in S3 (not in the agent's word) that the
 * outputs manifest and the newest complete checkpoint are there before anything is released.
 */
export async function finalizeArtifacts(event: FinalizeArtifactsEvent, deps: RecordStepDeps): Promise<FinalizeResult> {
  const { runId } = event;
  const manifest = await deps.artifacts.outputsManifest(runId);
  if (manifest === undefined) {
    throw new ArtifactsMissingError(`Training exited 0 but runs/${runId}/outputs/_manifest.json is not in S3`);
  }
  const checkpoint = await deps.artifacts.latestCheckpoint(runId);
  // A spot warning that came as the script was finishing marked the attempt SPOT_INTERRUPTED
  // before the agent could act on it; training completed all the same, so the attempt did not
  // end in an interruption and must not count as one.
  const attempt = (await deps.store.get(runId))?.attempts.find((a) => a.attempt === event.attempt);
  if (attempt !== undefined && attempt.endedAt === undefined && attempt.endReason !== 'SUCCEEDED') {
    await deps.store.updateAttempt(runId, event.attempt, { endReason: 'SUCCEEDED' });
  }
  await deps.store.transition(runId, ['TRAINING', 'CHECKPOINTING', 'FINALIZING'], 'FINALIZING', {
    statusReason: `Outputs verified: ${manifest.files} file(s), ${manifest.bytes} bytes`,
    latestCheckpoint: checkpoint
      ? { uri: checkpoint.uri, attempt: checkpoint.attempt, createdAt: checkpoint.createdAt, step: checkpoint.step, epoch: checkpoint.epoch }
      : undefined,
  });
  return { outputsManifest: manifest.manifestUri, outputsBytes: manifest.bytes, finalCheckpoint: checkpoint?.uri ?? null };
}
