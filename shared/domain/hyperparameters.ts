import { z } from 'zod';
import { RunInvalidError, type FieldIssue } from '../errors';

/**
 * Hyperparameters: a map (`{ epochs: 50, lr: 0.001 }`) or the CLI's string form
 * (`"epochs=50,lr=0.001"`), normalised to string values in the order given, and passed to the
 * training script as `--epochs 50 --lr 0.001`. Every value stays one argv element whatever it
 * holds; quoting for the shell happens once, in shell.ts, never here.
 */

/** Normalised hyperparameters: key → value as the script receives it, in the order given. */
export type Hyperparameters = Record<string, string>;

/** What a user may write: a map of scalars, or `key=value` pairs separated by commas. */
export type HyperparametersInput = string | Readonly<Record<string, string | number | boolean>>;

const KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * Linux refuses a single argv element over 128 KiB (MAX_ARG_STRLEN); 32 Ki characters stay
 * under it even at four UTF-8 bytes each.
 */
export const MAX_VALUE_LENGTH = 32 * 1024;

type Entry = readonly [key: string, value: string];

/** A problem with one hyperparameter; `key` is empty when the whole value is wrong. */
interface KeyIssue {
  key: string;
  message: string;
}

/** `batch_size` → `batch-size`: the flag name (without `--`) that a key becomes. */
export function flagName(key: string): string {
  return key.replaceAll('_', '-');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function entriesFromString(text: string): { entries: Entry[]; issues: KeyIssue[] } {
  const entries: Entry[] = [];
  const issues: KeyIssue[] = [];
  for (const segment of text.split(',')) {
    if (segment.trim() === '') continue; // "epochs=50," is a harmless trailing comma
    const eq = segment.indexOf('=');
    if (eq === -1) {
      const key = segment.trim();
      issues.push({
        key,
        message: `"${key}" has no value: write ${key}=VALUE, or ${key}= for an empty value (a value cannot contain "," in the string form; use the map form)`,
      });
      continue;
    }
    // Only the first "=" separates: `opt=a=b` is the key `opt` with the value `a=b`.
    entries.push([segment.slice(0, eq).trim(), segment.slice(eq + 1)]);
  }
  return { entries, issues };
}

function entriesFromMap(map: Record<string, unknown>): { entries: Entry[]; issues: KeyIssue[] } {
  const entries: Entry[] = [];
  const issues: KeyIssue[] = [];
  for (const [key, value] of Object.entries(map)) {
    if (typeof value === 'string') entries.push([key, value]);
    else if (typeof value === 'boolean') entries.push([key, String(value)]);
    else if (typeof value === 'number') {
      const problem = numberProblem(value);
      if (problem === undefined) entries.push([key, String(value)]);
      else issues.push({ key, message: problem });
    }
    else issues.push({ key, message: `must be a string, number or boolean, not ${value === null ? 'null' : typeof value}` });
  }
  return { entries, issues };
}

/** The smallest normal double; below it (and above zero) a number is subnormal and carries little precision. */
const MIN_NORMAL = 2.2250738585072014e-308;

/**
 * Why a JSON number cannot be passed as written, or undefined: JSON numbers are doubles, so an
 * integer past 2^53 has already lost digits, and a subnormal keeps few; the string form keeps
 * exactly what was typed.
 */
function numberProblem(value: number): string | undefined {
  if (!Number.isFinite(value)) return 'must be a finite number';
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
    return `is past 2^53, where JSON numbers lose digits (${value} is what arrived); write it as a string, like "${BigInt(value)}"`;
  }
  if (value !== 0 && Math.abs(value) < MIN_NORMAL) return 'is a subnormal number with almost no precision; write it as a string';
  return undefined;
}

function checkEntries(entries: readonly Entry[]): KeyIssue[] {
  const issues: KeyIssue[] = [];
  const byFlag = new Map<string, string>();
  for (const [key, value] of entries) {
    if (!KEY.test(key)) {
      issues.push({
        key,
        message: `"${key}" is not a valid hyperparameter name: start with a letter, then letters, digits, "_" or "-"`,
      });
      continue;
    }
    const flag = flagName(key);
    const earlier = byFlag.get(flag);
    if (earlier === key) {
      issues.push({ key, message: `"${key}" is given more than once; give each hyperparameter once` });
    } else if (earlier !== undefined) {
      issues.push({ key, message: `"${earlier}" and "${key}" both become --${flag}; keep one of them` });
    } else {
      byFlag.set(flag, key);
    }
    if (value.includes('\0')) {
      issues.push({ key, message: 'must not contain a NUL character (no program argument can carry one)' });
    }
    if (value.length > MAX_VALUE_LENGTH) {
      issues.push({ key, message: `is ${value.length} characters long; at most ${MAX_VALUE_LENGTH} fit in one argument (put larger values in a file in the code bundle)` });
    }
  }
  return issues;
}

/** Normalises either input form; never throws, so the zod schema and the plain parser share it. */
function normalise(input: unknown): { value: Hyperparameters; issues: KeyIssue[] } {
  let read: { entries: Entry[]; issues: KeyIssue[] };
  if (typeof input === 'string') read = entriesFromString(input);
  else if (isRecord(input)) read = entriesFromMap(input);
  else {
    return {
      value: {},
      issues: [{ key: '', message: 'must be a map like {"epochs": 50} or a string like "epochs=50,lr=0.001"' }],
    };
  }
  // Keys start with a letter, so none is an array index: object key order is insertion order.
  return { value: Object.fromEntries(read.entries), issues: [...read.issues, ...checkEntries(read.entries)] };
}

function toFieldIssue(issue: KeyIssue): FieldIssue {
  return { path: issue.key === '' ? 'hyperparameters' : `hyperparameters.${issue.key}`, message: issue.message };
}

function invalid(issues: readonly KeyIssue[]): RunInvalidError {
  const fieldIssues = issues.map(toFieldIssue);
  return new RunInvalidError(
    `Invalid hyperparameters: ${fieldIssues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    fieldIssues,
  );
}

/**
 * Zod schema of the `hyperparameters` field. Problems surface as issues at
 * `hyperparameters.<key>`, so `parseRunSpec` names the key that is wrong.
 */
export const HyperparametersSchema = z
  .custom<HyperparametersInput>((value) => typeof value === 'string' || isRecord(value), {
    message: 'must be a map like {"epochs": 50} or a string like "epochs=50,lr=0.001"',
  })
  .transform((input: unknown, ctx): Hyperparameters => {
    const { value, issues } = normalise(input);
    for (const issue of issues) {
      ctx.addIssue({ code: 'custom', message: issue.message, path: issue.key === '' ? [] : [issue.key] });
    }
    return issues.length > 0 ? z.NEVER : value;
  });

/** Parses either form into normalised hyperparameters; throws RunInvalidError naming each bad key. */
export function parseHyperparameters(input: unknown): Hyperparameters {
  const { value, issues } = normalise(input);
  if (issues.length > 0) throw invalid(issues);
  return value;
}

/** `{ batch_size: '32' }` → `['--batch-size', '32']`, in insertion order; throws RunInvalidError on bad keys. */
export function hyperparameterArgv(hyperparameters: Readonly<Record<string, string>>): string[] {
  const entries = Object.entries(hyperparameters);
  const issues = checkEntries(entries);
  if (issues.length > 0) throw invalid(issues);
  return entries.flatMap(([key, value]) => [`--${flagName(key)}`, value]);
}

/**
 * Explicit args that repeat a hyperparameter flag (`--epochs`, `--epochs=5`, `--batch_size`
 * for `batch-size`), each reported at `hyperparameters.<key>`. Args after a bare `--` are
 * positional and never conflict.
 */
export function findArgConflicts(
  hyperparameters: Readonly<Record<string, string>>,
  args: readonly string[],
): FieldIssue[] {
  const keyByFlag = new Map(Object.keys(hyperparameters).map((key) => [flagName(key), key]));
  const issues: FieldIssue[] = [];
  for (const [index, arg] of args.entries()) {
    if (arg === '--') break;
    if (!arg.startsWith('--')) continue;
    const key = keyByFlag.get(flagName(arg.slice(2).split('=')[0] ?? ''));
    if (key === undefined) continue;
    issues.push({
      path: `hyperparameters.${key}`,
      message: `args.${index} ("${arg}") sets the same flag as hyperparameter "${key}"; set it in one place only`,
    });
  }
  return issues;
}

/** The part of a run spec that decides the training command. */
export interface TrainingCommandSpec {
  code: { interpreter: string; entrypoint?: string; command?: readonly string[] };
  hyperparameters: Readonly<Record<string, string>>;
  args: readonly string[];
}

/**
 * The training command as argv: `[interpreter, entrypoint, ...hyperparameters, ...args]`, or
 * `[...command, ...hyperparameters, ...args]`. Throws RunInvalidError on a bad spec.
 */
export function buildTrainingArgv(spec: TrainingCommandSpec): string[] {
  const hyperparameters = hyperparameterArgv(spec.hyperparameters);
  const conflicts = findArgConflicts(spec.hyperparameters, spec.args);
  if (conflicts.length > 0) {
    throw new RunInvalidError(
      `Invalid run spec: ${conflicts.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      conflicts,
    );
  }
  const { command, entrypoint, interpreter } = spec.code;
  let program: readonly string[];
  if (command !== undefined && command.length > 0) program = command;
  else if (entrypoint !== undefined) program = [interpreter, entrypoint];
  else {
    throw new RunInvalidError('Invalid run spec: code: set code.entrypoint or code.command', [
      { path: 'code', message: 'set code.entrypoint (e.g. "train.py") or code.command (e.g. ["python3", "train.py"])' },
    ]);
  }
  return [...program, ...hyperparameters, ...spec.args];
}
