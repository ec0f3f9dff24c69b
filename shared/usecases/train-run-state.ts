import { z } from 'zod';

/**
 * The pieces of the train-run execution state that the steps read. The state stays small (ids
 * and S3 pointers, never logs or manifests) because a state's input/output is at most 256 KiB.
 */

export const RunIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be a run id');

export const PlacementSchema = z.object({
  instanceTypes: z.array(z.string()).min(1),
  availabilityZones: z.array(z.string()),
  spot: z.boolean(),
});

/** What a Catch puts at `ResultPath`: the error name and its cause. */
export const CaughtErrorSchema = z.object({ Error: z.string(), Cause: z.string().optional() });

/** What ValidateRun starts the execution state with, and DecideRecovery restarts it with. */
export interface AttemptState {
  runId: string;
  attempt: number;
  /** S3 URI of the complete checkpoint to resume from; null on a fresh start. */
  resumeFrom: string | null;
  /** Instance types/AZs/market for this attempt; null: the spec's own. */
  placement: z.infer<typeof PlacementSchema> | null;
  /** When the run started waiting for capacity; null while it is not waiting. */
  waitingSince: string | null;
  /** `limits.maxRuntime` in seconds: LaunchTraining's TimeoutSeconds. */
  maxRuntimeSeconds: number;
}

/**
 * The whole execution state as ReleaseResources and FinishRun see it (they can be reached from
 * any state, so every field is optional). The run id falls back to the execution name.
 */
export const ExecutionStateSchema = z.looseObject({
  runId: RunIdSchema.optional().catch(undefined),
  attempt: z.number().int().min(1).optional().catch(undefined),
  provision: z
    .looseObject({ instance: z.looseObject({ instanceId: z.string() }).optional() })
    .optional()
    .catch(undefined),
  error: CaughtErrorSchema.optional().catch(undefined),
  releaseError: CaughtErrorSchema.optional().catch(undefined),
  recovery: z
    .looseObject({
      action: z.string(),
      status: z.string().optional(),
      reason: z.string().optional(),
      nextAttempt: z.number().int().optional(),
    })
    .optional()
    .catch(undefined),
  finalize: z
    .looseObject({ outputsManifest: z.string(), finalCheckpoint: z.string().nullable().optional() })
    .optional()
    .catch(undefined),
});
export type ExecutionState = z.infer<typeof ExecutionStateSchema>;

/** Events of ReleaseResources and FinishRun: the whole state plus the execution name. */
export const WholeStateEventSchema = z.object({
  state: z.unknown(),
  executionName: z.string().min(1),
});

/** Reads the whole state leniently: a field that does not parse is treated as absent, not as a failure. */
export function readExecutionState(state: unknown, executionName: string): ExecutionState & { runId: string } {
  const parsed = ExecutionStateSchema.safeParse(state);
  const value: ExecutionState = parsed.success ? parsed.data : {};
  // The API's input carries the run id before ValidateRun has copied it to the state's top.
  const input = z.object({ runId: RunIdSchema }).safeParse(state);
  const runId = value.runId ?? (input.success ? input.data.runId : executionName);
  return { ...value, runId };
}
