import type { FieldIssue } from '../errors';

/**
 * The limits a run spec is held to, chosen so that a spec the API accepts also fits every place
 * it travels to: the DynamoDB run record (400 KB per item), the Step Functions execution input
 * (256 KiB), the SSM command that ships the agent's config, and the training process's argv and
 * environment (Linux: 128 KiB per string, MAX_ARG_STRLEN; ARG_MAX for all of them together).
 * docs/run-spec.md lists them in a table; the numbers here are the source.
 */
export const SPEC_LIMITS = {
  /** The whole spec as UTF-8 JSON, before and after defaults: far below DynamoDB's 400 KB item and Step Functions' 256 KiB input. */
  specBytes: 64 * 1024,
  /** Any one string: 32 Ki UTF-16 units are at most 96 KiB of UTF-8, under Linux's 128 KiB per argv or environment string. */
  stringChars: 32 * 1024,
  /** Training argv plus environment, as the kernel counts them (bytes + NUL each): a margin under the smallest ARG_MAX (128 KiB). */
  argvEnvBytes: 96 * 1024,
  /** How deep objects and arrays may nest (a spec needs four levels). */
  depth: 8,
  /** Map keys: at most this long. */
  keyChars: 128,
  /** Entries of each map and list. */
  hyperparameters: 256,
  env: 256,
  /** Each secret is one API call at the start of every attempt. */
  secrets: 32,
  /** EC2 allows 50 tags per resource; runctl adds its own. */
  tags: 40,
  args: 1024,
  command: 1024,
  data: 64,
  metricDefinitions: 64,
  instanceTypes: 20,
  subnets: 16,
  availabilityZones: 16,
  /** One year: `limits.maxRuntime`. */
  maxRuntimeSeconds: 365 * 86400,
  /**
   * One year, as `maxRuntime`: the capacity loop's pauses grow with the window so that its
   * polls stay inside the run's share of the 25,000-event history (shared/domain/history-budget.ts).
   */
  maxWaitForCapacitySeconds: 365 * 86400,
  maxCostUsd: 1_000_000,
  /** The dearest EC2 instance is well under 1,000 USD per hour. */
  maxSpotPriceUsd: 1000,
  /** The smallest price or budget: keeps numbers inside DynamoDB's range (no subnormals). */
  minUsd: 0.0001,
} as const;

/** Keys that mean something to JavaScript objects: refused anywhere in a request, whatever the map. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Bytes of `text` in UTF-8. */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** A string that is not well-formed UTF-16 (a lone surrogate) cannot be encoded as UTF-8 for the agent, the shell or DynamoDB. */
export function isWellFormed(text: string): boolean {
  // With the u flag a surrogate pair is one code point: only a lone surrogate matches \p{Cs}.
  return !LONE_SURROGATE.test(text);
}

const LONE_SURROGATE = /\p{Cs}/u;

function describe(path: readonly (string | number)[]): string {
  return path.map(String).join('.') || '(root)';
}

/**
 * Checks raw JSON-like input before any schema reads it: no forbidden key (`__proto__` would
 * replace an object's prototype when a map is copied), no lone surrogate in a key or string,
 * no string over `stringChars`, nothing nested deeper than `depth`, and no number that is not
 * finite. Reports at most `max` issues, each at its dotted path under `prefix`.
 */
export function rawInputIssues(value: unknown, prefix: readonly (string | number)[] = [], max = 20): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const visit = (node: unknown, path: (string | number)[]): void => {
    if (issues.length >= max) return;
    if (typeof node === 'string') {
      if (!isWellFormed(node)) issues.push({ path: describe(path), message: 'must be well-formed Unicode (it holds a lone surrogate, like "\\ud800")' });
      else if (node.length > SPEC_LIMITS.stringChars) {
        issues.push({ path: describe(path), message: `is ${node.length} characters long; at most ${SPEC_LIMITS.stringChars} fit (put larger values in a file in the code bundle)` });
      }
      return;
    }
    if (typeof node === 'number') {
      if (!Number.isFinite(node)) issues.push({ path: describe(path), message: 'must be a finite number' });
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    if (path.length - prefix.length >= SPEC_LIMITS.depth) {
      issues.push({ path: describe(path), message: `is nested too deeply (at most ${SPEC_LIMITS.depth} levels)` });
      return;
    }
    if (Array.isArray(node)) {
      node.forEach((item, index) => visit(item, [...path, index]));
      return;
    }
    for (const key of Object.keys(node)) {
      const at = [...path, key];
      if (FORBIDDEN_KEYS.has(key)) {
        issues.push({ path: describe(at), message: `"${key}" is not allowed as a key (it names a JavaScript object internal); rename it` });
      } else if (!isWellFormed(key)) {
        issues.push({ path: describe([...path, key.replace(/\p{Cs}/gu, '\ufffd')]), message: 'this key must be well-formed Unicode (it holds a lone surrogate)' });
      } else if (key.length > SPEC_LIMITS.keyChars) {
        issues.push({ path: describe([...path, `${key.slice(0, 32)}…`]), message: `keys are at most ${SPEC_LIMITS.keyChars} characters` });
      } else {
        visit((node as Record<string, unknown>)[key], at);
      }
      if (issues.length >= max) return;
    }
  };
  visit(value, [...prefix]);
  return issues;
}

/** The JSON size check: `what` is at most `specBytes` as UTF-8 JSON. Undefined when it fits or is not JSON-serialisable. */
export function specSizeIssue(value: unknown, path: string): FieldIssue | undefined {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return undefined;
  }
  const bytes = text === undefined ? 0 : utf8Bytes(text);
  if (bytes <= SPEC_LIMITS.specBytes) return undefined;
  return {
    path,
    message: `is ${bytes} bytes as JSON; a run spec holds at most ${SPEC_LIMITS.specBytes} (put large values in a file in the code bundle or in S3)`,
  };
}

/** Bytes the kernel counts for an argv and an environment: each string's UTF-8 bytes plus its NUL. */
export function argvEnvBytes(argv: readonly string[], env: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const arg of argv) total += utf8Bytes(arg) + 1;
  for (const [key, value] of Object.entries(env)) total += utf8Bytes(key) + 1 + utf8Bytes(value) + 1;
  return total;
}
