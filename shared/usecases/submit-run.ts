import { z } from 'zod';
import { ConflictError, RunInvalidError, StatusConflictError } from '../errors';
import type { RunRecord } from '../domain/run-record';
import { runIdFor, specHash } from '../domain/run-identity';
import { parseRunSpec, toFieldIssues } from '../domain/run-spec';
import { secretsScope } from '../domain/secret-refs';
import type { Executions } from '../ports/executions';
import type { RunStore } from '../ports/run-store';

export const SubmitRunBodySchema = z.object({
  /** Makes the submit idempotent: the same token (per owner) always means the same run. */
  clientToken: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_", ":" or "-"')
    .optional(),
  spec: z.unknown().refine((v) => v !== undefined, 'is required: the run spec (see docs/run-spec.md)'),
});

export interface SubmitRunDeps {
  store: RunStore;
  executions: Executions;
  clock: () => Date;
  /** The stack's runs bucket: a spec may not point into its `runs/` (other runs' files). */
  runsBucket: string;
  /** The stack's secrets prefix (`custom.secretsPrefix`); without it a spec with secrets is refused. */
  secretsPrefix?: string;
}

export interface SubmitRunResult {
  record: RunRecord;
  /** False when the client token named an existing run with the same spec. */
  created: boolean;
}

/** The input every train-run execution receives from the API or a schedule. */
export interface TrainRunInput {
  runId: string;
  owner: string;
  spec: unknown;
  clientToken?: string;
  scheduleId?: string;
}

/** Validates a submission, records the run and starts its execution. */
export async function submitRun(
  request: { owner: string; body: unknown; scheduleId?: string },
  deps: SubmitRunDeps,
): Promise<SubmitRunResult> {
  const body = SubmitRunBodySchema.safeParse(request.body);
  if (!body.success) {
    const issues = toFieldIssues(body.error);
    throw new RunInvalidError(`Invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  const spec = prefixIssues('spec', () =>
    parseRunSpec(body.data.spec, { runsBucket: deps.runsBucket, secrets: secretsScope(deps.secretsPrefix, request.owner) }),
  );
  const { clientToken } = body.data;
  const now = deps.clock().toISOString();
  const record: RunRecord = {
    runId: runIdFor(request.owner, clientToken),
    owner: request.owner,
    spec,
    specHash: specHash(spec),
    clientToken,
    status: 'PENDING',
    statusReason: 'Submitted; the execution is starting',
    createdAt: now,
    updatedAt: now,
    attempts: [],
    costUsd: 0,
    interruptions: 0,
    userFailures: 0,
    scheduleId: request.scheduleId,
  };

  let created = true;
  let current = record;
  try {
    await deps.store.create(record);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    const existing = await deps.store.get(record.runId);
    if (existing === undefined) throw error;
    if (existing.specHash !== record.specHash) {
      throw new ConflictError(
        `clientToken "${clientToken}" was already used for run ${existing.runId} with a different spec; ` +
          'use a new clientToken for a new run',
        { cause: error },
      );
    }
    created = false;
    current = existing;
  }

  // Start (or re-start, for a retried submit whose first start was lost): the execution
  // name is the run id, so a second StartExecution never creates a second run.
  if (current.executionArn === undefined && current.status === 'PENDING') {
    const input: TrainRunInput = { runId: current.runId, owner: current.owner, spec: current.spec, clientToken, scheduleId: request.scheduleId };
    const started = await deps.executions.start(current.runId, input);
    try {
      current = await deps.store.transition(current.runId, 'PENDING', 'PENDING', { executionArn: started.executionArn });
    } catch (error) {
      // ValidateRun may already have moved the run on (and recorded the ARN itself).
      if (!(error instanceof StatusConflictError)) throw error;
      current = { ...current, executionArn: started.executionArn };
    }
  }
  return { record: current, created };
}

/** Re-throws a RunInvalidError with its field paths under `prefix`. */
function prefixIssues<T>(prefix: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof RunInvalidError)) throw error;
    const issues = error.issues.map((i) => ({ path: i.path === '(root)' ? prefix : `${prefix}.${i.path}`, message: i.message }));
    throw new RunInvalidError(`Invalid run spec: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues, { cause: error });
  }
}
