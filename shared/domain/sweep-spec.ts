import { z } from 'zod';
import { RunInvalidError } from '../errors';
import { ExperimentNameSchema, MetricNameSchema, ObjectiveSchema } from './experiment';
import { parseRunSpec, toFieldIssues, type RunSpec } from './run-spec';

/**
 * A sweep: one base run spec, a search space over its hyperparameters, and how to spend on it
 * (trials in parallel, trials at most, dollars at most), what to optimise, and when to give up on
 * a trial early. Every trial is an ordinary run of the base spec with its own hyperparameters.
 */

const KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;
const hyperparameterKey = z.string().regex(KEY, 'must be a hyperparameter name like lr or batch_size');
const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** `uniform(a,b)`, `loguniform(a,b)`, `int(a,b)` or `choice(x,y,…)`. */
const DISTRIBUTION = /^(uniform|loguniform|int|choice)\(([^()]*)\)$/;

export type Distribution =
  | { kind: 'uniform' | 'loguniform' | 'int'; low: number; high: number }
  | { kind: 'choice'; values: string[] };

/** Parses a distribution; throws with a message that says what a valid one looks like. */
export function parseDistribution(text: string): Distribution {
  const match = DISTRIBUTION.exec(text.replaceAll(' ', ''));
  const kind = match?.[1];
  const args = (match?.[2] ?? '').split(',').filter((a) => a !== '');
  if (kind === 'choice') {
    if (args.length === 0) throw new Error('choice() needs at least one value, like choice(32,64)');
    return { kind, values: args };
  }
  if (kind === 'uniform' || kind === 'loguniform' || kind === 'int') {
    const [low, high] = args.map(Number);
    if (args.length !== 2 || low === undefined || high === undefined || !Number.isFinite(low) || !Number.isFinite(high) || low >= high) {
      throw new Error(`${kind}(low,high) needs two numbers with low < high, like ${kind}(1e-4,1e-1)`);
    }
    if (kind === 'loguniform' && low <= 0) throw new Error('loguniform(low,high) needs low > 0');
    if (kind === 'int' && (!Number.isInteger(low) || !Number.isInteger(high))) throw new Error('int(low,high) needs whole numbers');
    return { kind, low, high };
  }
  throw new Error('must be uniform(a,b), loguniform(a,b), int(a,b) or choice(x,y,…)');
}

const distribution = z.string().superRefine((text, ctx) => {
  try {
    parseDistribution(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
  }
});

const SearchSchema = z
  .strictObject({
    /** Every combination of these values (in key order) is a trial. */
    grid: z.record(hyperparameterKey, z.array(scalar).min(1, 'list at least one value')).optional(),
    /** `trials` draws from these distributions. */
    random: z.record(hyperparameterKey, distribution).optional(),
    /** Random draws (required with `random`). */
    trials: z.number().int().min(1).max(10_000).optional(),
    /** Seed of the random draws: the same seed draws the same trials. Default 0. */
    seed: z.number().int().min(0).default(0),
  })
  .superRefine((s, ctx) => {
    if ((s.grid === undefined) === (s.random === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['grid'], message: 'give a grid ({"lr": [0.1, 0.01]}) or random distributions ({"lr": "loguniform(1e-4,1e-1)"}), one of the two' });
    }
    if (s.random !== undefined && s.trials === undefined) {
      ctx.addIssue({ code: 'custom', path: ['trials'], message: 'is required with random: how many trials to draw' });
    }
  });

/** The median stopping rule; `rule` names it so that other rules can be added beside it. */
const MedianRuleSchema = z.strictObject({
  rule: z.literal('median'),
  /** Metric line key that counts progress. Default `epoch`. */
  stepKey: MetricNameSchema.default('epoch'),
  /** No trial is stopped before it has reported this step (the grace period). Default 1. */
  minSteps: z.number().min(0).default(1),
  /** Other trials that must have reached the step before the median means anything. Default 3. */
  minTrials: z.number().int().min(1).default(3),
});

export const SweepSpecSchema = z.strictObject({
  /** Name of the sweep, and of its experiment unless `experiment` says otherwise. */
  name: ExperimentNameSchema,
  experiment: ExperimentNameSchema.optional(),
  /** The run spec every trial starts from (docs/run-spec.md); its hyperparameters are the defaults. */
  base: z.unknown().refine((v) => v !== undefined, 'is required: the run spec every trial starts from'),
  search: SearchSchema,
  objective: ObjectiveSchema,
  /** Trials running at once (the Map's MaxConcurrency). Default 4. */
  maxParallel: z.number().int().min(1).max(1000).default(4),
  /** Trials at most (the first ones of the grid or of the draws). Default: all of them. */
  maxTrials: z.number().int().min(1).max(10_000).optional(),
  /** Dollars for the whole sweep; a trial that could take it over is not launched. */
  maxCostUsd: z.number().positive('must be a positive amount in USD').optional(),
  earlyStopping: z.discriminatedUnion('rule', [MedianRuleSchema], { error: 'rule must be "median"' }).optional(),
});
export type SweepSpec = z.output<typeof SweepSpecSchema>;
export type EarlyStopping = NonNullable<SweepSpec['earlyStopping']>;

/** A parsed sweep spec with its validated base run spec. */
export interface ParsedSweep {
  spec: SweepSpec;
  base: RunSpec;
}

/** Validates a sweep spec (and its base run spec); throws RunInvalidError naming each bad field. */
export function parseSweepSpec(input: unknown): ParsedSweep {
  const parsed = SweepSpecSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error);
    throw new RunInvalidError(`Invalid sweep spec: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  let base: RunSpec;
  try {
    base = parseRunSpec(parsed.data.base);
  } catch (error) {
    if (!(error instanceof RunInvalidError)) throw error;
    const issues = error.issues.map((i) => ({ path: i.path === '(root)' ? 'base' : `base.${i.path}`, message: i.message }));
    throw new RunInvalidError(`Invalid sweep spec: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues, { cause: error });
  }
  const trials = trialCount(parsed.data);
  if (trials > 10_000) {
    throw new RunInvalidError(`Invalid sweep spec: search: the grid has ${trials} combinations; at most 10000 (set maxTrials)`, [
      { path: 'search.grid', message: `has ${trials} combinations; at most 10000 (set maxTrials)` },
    ]);
  }
  return { spec: parsed.data, base };
}

/** How many trials the sweep runs. */
export function trialCount(spec: Pick<SweepSpec, 'search' | 'maxTrials'>): number {
  const all = spec.search.grid !== undefined
    ? Object.values(spec.search.grid).reduce((n, values) => n * values.length, 1)
    : (spec.search.trials ?? 0);
  return Math.min(all, spec.maxTrials ?? all);
}

/** mulberry32: a small seeded generator, so trial n draws the same values wherever it is computed. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Four significant digits: a drawn learning rate reads 0.003162, not 0.0031622776601683794. */
function draw(d: Distribution, next: () => number): string {
  switch (d.kind) {
    case 'choice':
      return d.values[Math.floor(next() * d.values.length)] ?? d.values[0] ?? '';
    case 'int':
      return String(d.low + Math.floor(next() * (d.high - d.low + 1)));
    case 'uniform':
      return String(Number((d.low + next() * (d.high - d.low)).toPrecision(4)));
    case 'loguniform':
      return String(Number(Math.exp(Math.log(d.low) + next() * (Math.log(d.high) - Math.log(d.low))).toPrecision(4)));
  }
}

/**
 * The hyperparameters of trial `index` (0-based): the grid's combination in key order (the last
 * key varies fastest), or the draw of the seeded generator. Pure, so the Map carries only the
 * trial numbers and each trial computes its own values.
 */
export function trialHyperparameters(spec: Pick<SweepSpec, 'search'>, index: number): Record<string, string> {
  const { grid, random, seed } = spec.search;
  if (grid !== undefined) {
    const entries = Object.entries(grid);
    const values: Record<string, string> = {};
    let rest = index;
    for (let k = entries.length - 1; k >= 0; k -= 1) {
      const [key, options] = entries[k] ?? ['', []];
      values[key] = String(options[rest % options.length]);
      rest = Math.floor(rest / options.length);
    }
    return Object.fromEntries(entries.map(([key]) => [key, values[key] ?? '']));
  }
  const next = generator(seed * 1_000_003 + index);
  return Object.fromEntries(Object.entries(random ?? {}).map(([key, text]) => [key, draw(parseDistribution(text), next)]));
}
