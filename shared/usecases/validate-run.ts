import { z } from 'zod';
import { ConflictError, PrecheckFailedError } from '../errors';
import type { RunRecord } from '../domain/run-record';
import { specHash } from '../domain/run-identity';
import { parseRunSpec } from '../domain/run-spec';
import { secretsScope } from '../domain/secret-refs';
import type { RecordStepDeps } from './step-deps';
import { RunIdSchema, type AttemptState } from './train-run-state';

export const ValidateRunEventSchema = z.object({
  /** The execution input: the API's `{runId, owner, spec, clientToken?}` or a bare spec. */
  input: z.unknown(),
  executionName: z.string().min(1),
  executionArn: z.string().min(1).optional(),
});
export type ValidateRunEvent = z.infer<typeof ValidateRunEventSchema>;

const ApiInputSchema = z.object({
  runId: RunIdSchema,
  owner: z.string().min(1),
  spec: z.unknown(),
  clientToken: z.string().optional(),
  scheduleId: z.string().optional(),
});

/** Owner of runs started from the Step Functions console with a bare spec. */
export const CONSOLE_OWNER = 'console';

/**
 * ValidateRun: parses the input with the API's schema (the machine never trusts that the API
 * did), writes the record keyed by the execution name, and checks that the code bundle exists.
 */
export async function validateRun(event: ValidateRunEvent, deps: RecordStepDeps): Promise<AttemptState> {
  const api = ApiInputSchema.safeParse(event.input);
  const runId = api.success ? api.data.runId : RunIdSchema.parse(event.executionName);
  const owner = api.success ? api.data.owner : CONSOLE_OWNER;
  const spec = parseRunSpec(api.success ? api.data.spec : event.input, {
    runsBucket: deps.config.bucket,
    secrets: secretsScope(deps.config.secretsPrefix, owner),
  });
  const now = deps.clock().toISOString();

  const existing = await deps.store.get(runId);
  if (existing === undefined) {
    const record: RunRecord = {
      runId,
      owner,
      spec,
      specHash: specHash(spec),
      clientToken: api.success ? api.data.clientToken : undefined,
      scheduleId: api.success ? api.data.scheduleId : undefined,
      status: 'VALIDATING',
      statusReason: 'Checking the spec and the code bundle',
      createdAt: now,
      updatedAt: now,
      executionArn: event.executionArn,
      attempts: [],
      costUsd: 0,
      interruptions: 0,
      userFailures: 0,
    };
    try {
      await deps.store.create(record);
    } catch (error) {
      // A retried ValidateRun whose first put landed: the record is there, move it on below.
      if (!(error instanceof ConflictError)) throw error;
    }
  }
  await deps.store.transition(runId, ['PENDING', 'VALIDATING'], 'VALIDATING', {
    statusReason: 'Checking the spec and the code bundle',
    executionArn: event.executionArn,
  });

  if (!(await deps.artifacts.objectExists(spec.code.bundle))) {
    throw new PrecheckFailedError(
      `Code bundle ${spec.code.bundle} does not exist; upload it (runctl submit does) and submit again`,
    );
  }
  return {
    runId,
    attempt: 1,
    resumeFrom: null,
    placement: null,
    waitingSince: null,
    maxRuntimeSeconds: spec.limits.maxRuntime,
  };
}
