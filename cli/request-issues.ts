import type { z } from 'zod';
import { toFieldIssues } from '../shared/domain/run-spec';
import { CliError } from './errors';

/** A bad field of a request, as the API's 400 answers name it. */
export interface FieldIssue {
  path: string;
  message: string;
}

/**
 * Validates a request body with the API's own schema, so a bad flag is reported before anything
 * is sent (or packed). Each issue names the field and the flag that sets it.
 */
export function checkRequest<S extends z.ZodType>(
  schema: S,
  body: Record<string, unknown>,
  options: { what: string; flags: Record<string, string>; docs: string; earlier?: FieldIssue[] },
): z.output<S> {
  const earlier = options.earlier ?? [];
  const parsed = schema.safeParse(body, { reportInput: true });
  if (parsed.success && earlier.length === 0) return parsed.data;
  const reported = new Set(earlier.map((i) => i.path));
  const issues = [...earlier, ...(parsed.success ? [] : toFieldIssues(parsed.error).filter((i) => !reported.has(i.path)))];
  const lines = issues.map((i) => {
    const flag = options.flags[i.path];
    return `  ${i.path}${flag === undefined ? '' : ` (${flag})`}: ${i.message}`;
  });
  throw new CliError(`Invalid ${options.what}:\n${lines.join('\n')}\nSee ${options.docs} for every field.`, 2);
}

/** A whole-number flag: its number, or an issue for the field it sets (undefined when not given). */
export function wholeNumber(
  value: string | undefined,
  field: string,
  issues: FieldIssue[],
): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  issues.push({ path: field, message: `must be a whole number (got "${value}")` });
  return undefined;
}
