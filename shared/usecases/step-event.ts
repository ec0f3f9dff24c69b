import type { z } from 'zod';
import { toFieldIssues } from '../domain/run-spec';
import { RunctlError, NotFoundError } from '../errors';
import type { RunRecord } from '../domain/run-record';
import type { RunStore } from '../ports/run-store';

/** A step was invoked with an event the state machine should never send: a wiring bug, not user input. */
export class StepInputInvalidError extends RunctlError {
  override name = 'Step.InputInvalid';
}

/** Parses a step's event; throws StepInputInvalidError naming each bad field. */
export function parseStepEvent<S extends z.ZodType>(step: string, schema: S, event: unknown): z.output<S> {
  const result = schema.safeParse(event);
  if (result.success) return result.data;
  const issues = toFieldIssues(result.error);
  throw new StepInputInvalidError(`${step} got a malformed event: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
}

/** Reads the run record, which every step after ValidateRun may rely on. */
export async function requireRun(store: RunStore, runId: string): Promise<RunRecord> {
  const record = await store.get(runId);
  if (record === undefined) throw new NotFoundError(`Run ${runId} has no record`);
  return record;
}

/** A Step Functions error `Cause` in words: a Lambda error's message, or the agent's cause JSON. */
/** Lines the agent itself writes into the training log: `2026-11-25T06:00:00Z [runctl] …`. */
const AGENT_LINE = /^\S+ \[runctl\] /;

/**
 * The last lines the training script printed (the agent's own lines dropped), joined with
 * " | " and capped, so the status reason shows the traceback rather than "checkpoint uploaded".
 */
export function scriptTail(logTail: string, lines = 6, maxChars = 800): string {
  const own = logTail.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '' && !AGENT_LINE.test(l));
  const joined = own.slice(-lines).join(' | ');
  return joined.length > maxChars ? `…${joined.slice(-maxChars)}` : joined;
}

export function describeCause(cause: string | undefined): string | undefined {
  if (cause === undefined || cause === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(cause);
  } catch {
    return cause.slice(0, 500);
  }
  if (typeof parsed !== 'object' || parsed === null) return cause.slice(0, 500);
  const fields: Record<string, unknown> = { ...parsed };
  if (typeof fields.errorMessage === 'string') return fields.errorMessage.slice(0, 500);
  if (typeof fields.exitCode === 'number') {
    const tail = typeof fields.logTail === 'string' ? scriptTail(fields.logTail) : '';
    // A node of a multi-node run: the node whose script failed.
    const node = typeof fields.node === 'number' ? `node ${fields.node}: ` : '';
    return `${node}exit code ${fields.exitCode}${tail ? `; log tail: ${tail}` : ''}`;
  }
  if (typeof fields.reason === 'string') return fields.reason;
  if (typeof fields.message === 'string') return fields.message.slice(0, 500);
  return cause.slice(0, 500);
}
