/**
 * The input of a prewarm-volume or build-image execution. POST /volumes, POST /images and a run's
 * EnsureImage start them with `{owner, request}`, so the catalog entry the execution records
 * belongs to the caller whose request it was; the owner is never a field of the request body.
 * A bare request (an execution started from the Step Functions console) belongs to the console,
 * as a bare run spec does.
 */
import { z } from 'zod';
import { CONSOLE_OWNER } from './validate-run';

const OwnedInputSchema = z.strictObject({ owner: z.string().min(1), request: z.unknown() });

export interface OwnedInput {
  owner: string;
  request: unknown;
}

/** Splits an execution's input into its owner and the request, which the caller then validates. */
export function ownedInput(input: unknown): OwnedInput {
  const parsed = OwnedInputSchema.safeParse(input);
  return parsed.success ? { owner: parsed.data.owner, request: parsed.data.request } : { owner: CONSOLE_OWNER, request: input };
}
