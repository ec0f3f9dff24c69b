import type { MiddlewareObj } from '@middy/core';
import { FORBIDDEN_KEYS } from '../domain/spec-limits';
import { RunInvalidError, type FieldIssue } from '../errors';
import type { ApiEvent } from './responses';

/** Deeper than any request runctl takes, shallow enough that walking it never exhausts the stack. */
const MAX_BODY_DEPTH = 32;

/** The first key that names a JavaScript object internal (`__proto__`, `constructor`, `prototype`), or too deep a nesting. */
function forbiddenKeyIssue(value: unknown, path: string[]): FieldIssue | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (path.length >= MAX_BODY_DEPTH) return { path: path.join('.'), message: `is nested too deeply (at most ${MAX_BODY_DEPTH} levels)` };
  const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  for (const [key, child] of entries) {
    if (!Array.isArray(value) && FORBIDDEN_KEYS.has(key)) {
      return { path: [...path, key].join('.'), message: `"${key}" is not allowed as a key (it names a JavaScript object internal); rename it` };
    }
    const inner = forbiddenKeyIssue(child, [...path, key]);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

function refuse(message: string, issue: FieldIssue, cause?: unknown): RunInvalidError {
  return new RunInvalidError(message, [issue], cause === undefined ? undefined : { cause });
}

/**
 * middy middleware: parses a JSON request body. Unlike a parser that throws on `__proto__`
 * with a bare "malformed JSON", every refusal is a 400 that says what to fix: the content type,
 * where the JSON breaks, or the path of a forbidden key (`spec.env.constructor`). `JSON.parse`
 * itself defines `__proto__` as a plain own property, so nothing is polluted before the check.
 */
export function jsonBody(): MiddlewareObj<ApiEvent> {
  return {
    before: (request) => {
      const event = request.event;
      const contentType = event.headers?.['content-type'] ?? event.headers?.['Content-Type'] ?? '';
      if (!/^application\/(.+\+)?json(\s*;.*)?$/i.test(contentType.trim())) {
        throw refuse('Send the body as JSON with the header content-type: application/json', { path: '(header) content-type', message: 'must be application/json' });
      }
      const raw = event.body ?? '';
      const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        const detail = error instanceof Error ? error.message : String(error);
        throw refuse(`The request body is not valid JSON: ${detail}`, { path: '(body)', message: 'is not valid JSON' }, error);
      }
      const issue = forbiddenKeyIssue(parsed, []);
      if (issue !== undefined) throw refuse(`Invalid request: ${issue.path}: ${issue.message}`, issue);
      // The parsed body replaces the text, as every JSON route expects.
      (event as { body: unknown }).body = parsed;
    },
  };
}
