import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { canonicalJson } from '../shared/domain/run-identity';
import { parseRunSpec, type RunSpec } from '../shared/domain/run-spec';
import { RunInvalidError } from '../shared/errors';
import { CliError, UsageError } from './errors';

/**
 * The run spec a `submit` sends: a spec file (`-f run.yaml`, YAML or JSON) and/or flags, the
 * flags winning. A spec file may say `code.dir` (relative to the file) instead of
 * `code.bundle`; the CLI packs that directory and replaces it with the uploaded bundle.
 */

export interface SubmitFlags {
  file?: string;
  dir?: string;
  entrypoint?: string;
  name?: string;
  hyperparameters?: string;
  instanceTypes?: string;
  spot?: boolean;
  data?: string[];
  maxCost?: string;
  maxRuntime?: string;
  /**
   * Instance types to use when neither the flags nor the spec file name any: the local backend
   * (`runctl dev`) has one kind of instance, so a local submit needs none.
   */
  defaultInstanceTypes?: string[];
}

export interface SpecDraft {
  /** The spec without its bundle (set once uploaded). */
  spec: Record<string, unknown>;
  /** Directory to pack, or undefined when the spec names a bundle already. */
  codeDir?: string;
}

const ObjectSchema = z.record(z.string(), z.unknown());

function asObject(value: unknown): Record<string, unknown> {
  const parsed = ObjectSchema.safeParse(value);
  return parsed.success && !Array.isArray(value) ? { ...parsed.data } : {};
}

function readSpecFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new CliError(`Cannot read the spec file ${path}`);
  }
  let value: unknown;
  try {
    value = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new CliError(`${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = ObjectSchema.safeParse(value);
  if (!parsed.success || Array.isArray(value)) throw new CliError(`${path} must hold one run spec object (see docs/run-spec.md)`);
  return { ...parsed.data };
}

/** A run name from a directory name: `My Project` → `My-Project`. */
export function nameFromDirectory(dir: string): string {
  const cleaned = basename(resolve(dir)).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return cleaned === '' ? 'run' : cleaned;
}

/** Merges the spec file and the flags into a spec still waiting for its bundle. */
export function draftSpec(flags: SubmitFlags): SpecDraft {
  const fromFile = flags.file === undefined ? {} : readSpecFile(flags.file);
  const spec = { ...fromFile };
  const code = asObject(spec.code);
  const fileDir = flags.file === undefined ? undefined : dirname(resolve(flags.file));

  let codeDir: string | undefined;
  if (flags.dir !== undefined) codeDir = resolve(flags.dir);
  else if (typeof code.dir === 'string') codeDir = resolve(fileDir ?? '.', code.dir);
  else if (code.bundle === undefined) codeDir = fileDir ?? resolve('.');
  delete code.dir;
  if (codeDir !== undefined) {
    if (!existsSync(codeDir)) throw new UsageError(`The code directory ${codeDir} does not exist`);
    delete code.bundle;
  }
  if (flags.entrypoint !== undefined) code.entrypoint = flags.entrypoint;
  if (code.entrypoint === undefined && code.command === undefined) {
    throw new UsageError('Say what to run: --entrypoint train.py (or code.entrypoint in the spec file)');
  }
  spec.code = code;

  if (flags.name !== undefined) spec.name = flags.name;
  spec.name ??= nameFromDirectory(codeDir ?? fileDir ?? '.');
  if (flags.hyperparameters !== undefined) spec.hyperparameters = flags.hyperparameters;

  const instance = asObject(spec.instance);
  if (flags.instanceTypes !== undefined) instance.types = flags.instanceTypes;
  if (flags.spot !== undefined) instance.spot = flags.spot;
  if (instance.types === undefined && flags.defaultInstanceTypes !== undefined) instance.types = flags.defaultInstanceTypes;
  if (instance.types === undefined) throw new UsageError('Say which instance types to use: --instance-type g5.xlarge,g4dn.xlarge');
  spec.instance = instance;

  if (flags.data !== undefined && flags.data.length > 0) spec.data = flags.data;

  const limits = asObject(spec.limits);
  if (flags.maxCost !== undefined) {
    const cost = Number(flags.maxCost);
    if (!Number.isFinite(cost)) throw new UsageError(`--max-cost must be an amount in USD, like 20 (got "${flags.maxCost}")`);
    limits.maxCostUsd = cost;
  }
  if (flags.maxRuntime !== undefined) limits.maxRuntime = /^\d+$/.test(flags.maxRuntime) ? Number(flags.maxRuntime) : flags.maxRuntime;
  if (Object.keys(limits).length > 0) spec.limits = limits;

  return { spec, codeDir };
}

/** Validates the spec with the API's own schema, so a bad field is reported before anything is uploaded. */
export function checkSpec(spec: Record<string, unknown>): RunSpec {
  try {
    return parseRunSpec(spec);
  } catch (error) {
    if (!(error instanceof RunInvalidError)) throw error;
    const lines = error.issues.map((i) => `  ${i.path}: ${i.message}`);
    throw new CliError(`Invalid run spec:\n${lines.join('\n')}\nSee docs/run-spec.md for every field.`, 2, { cause: error });
  }
}

/**
 * The submit's idempotency token: a hash of the normalised spec (which names the bundle by its
 * sha256), so running the same submit twice — a retry after a timeout, a second Enter —
 * lands on the same run. `salt` makes a deliberate re-run of the same spec a new run.
 */
export function clientTokenFor(spec: RunSpec, salt?: string): string {
  const digest = createHash('sha256').update(canonicalJson(spec)).update(salt === undefined ? '' : `\n${salt}`).digest('hex');
  return `submit-${digest.slice(0, 40)}`;
}
