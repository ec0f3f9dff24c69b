import { z } from 'zod';
import { checkHyperparametersAgainstScript } from '../argparse-check';
import { uploadDirectory } from '../bundle-upload';
import { printJson, type CommandContext } from '../context';
import { UsageError } from '../errors';
import { usd } from '../render';
import { checkSpec, draftSpec, type SubmitFlags } from '../spec-input';

export interface SweepOptions extends SubmitFlags {
  /** `lr=0.1,0.01` (repeatable): a grid axis. */
  grid: string[];
  /** `lr=loguniform(1e-4,1e-1)` (repeatable): a random distribution. */
  random: string[];
  trials?: number;
  seed?: number;
  objective?: string;
  maximize: boolean;
  maxParallel?: number;
  maxTrials?: number;
  /** Dollars for the whole sweep (`--max-cost` sets each trial's own cap). */
  budget?: string;
  /** `median`: the median stopping rule. */
  earlyStopping?: string;
  experiment?: string;
  clientToken?: string;
  /** Check the base hyperparameters and the axes against the entrypoint's argparse flags (on unless --no-check-args). */
  checkArgs: boolean;
}

const SweepAnswerSchema = z.looseObject({ sweepId: z.string(), status: z.string(), trials: z.number(), experiment: z.string() });

function axis(flag: string, text: string): [string, string] {
  const at = text.indexOf('=');
  if (at < 1) throw new UsageError(`--${flag} takes name=values, like --${flag} ${flag === 'grid' ? 'lr=0.1,0.01' : "'lr=loguniform(1e-4,1e-1)'"} (got "${text}")`);
  return [text.slice(0, at), text.slice(at + 1)];
}

/** The search space the flags describe. */
export function searchOf(options: Pick<SweepOptions, 'grid' | 'random' | 'trials' | 'seed'>): Record<string, unknown> {
  if (options.grid.length > 0 && options.random.length > 0) throw new UsageError('Give --grid or --random axes, not both');
  if (options.grid.length > 0) {
    return { grid: Object.fromEntries(options.grid.map((g) => { const [k, v] = axis('grid', g); return [k, v.split(',').map((s) => s.trim()).filter((s) => s !== '')]; })) };
  }
  if (options.random.length > 0) {
    if (options.trials === undefined) throw new UsageError('--random needs --trials N: how many trials to draw');
    return { random: Object.fromEntries(options.random.map((r) => axis('random', r))), trials: options.trials, ...(options.seed === undefined ? {} : { seed: options.seed }) };
  }
  throw new UsageError('A sweep needs a search space: --grid lr=0.1,0.01 (repeatable) or --random "lr=loguniform(1e-4,1e-1)" --trials 40');
}

/** `runctl sweep DIR …`: pack DIR as submit does, then submit the sweep over it. */
export async function submitSweep(context: CommandContext, options: SweepOptions): Promise<number> {
  const search = searchOf(options);
  const draft = draftSpec(options);
  const code = { ...(typeof draft.spec.code === 'object' ? draft.spec.code : {}) };
  const checked = checkSpec({ ...draft.spec, code: { bundle: 's3://runctl-placeholder/bundles/pending.tar.gz', ...code } });
  if (options.checkArgs && draft.codeDir !== undefined && checked.code.command === undefined) {
    // Every trial passes the base hyperparameters and one value per axis: all are flags of the script.
    const axes = [...options.grid.map((g) => axis('grid', g)[0]), ...options.random.map((r) => axis('random', r)[0])];
    const hyperparameters = { ...checked.hyperparameters, ...Object.fromEntries(axes.map((key) => [key, ''])) };
    await checkHyperparametersAgainstScript({ codeDir: draft.codeDir, entrypoint: checked.code.entrypoint, hyperparameters }, context.err);
  }
  let base = draft.spec;
  if (draft.codeDir !== undefined) {
    const { bundle } = await uploadDirectory(context, draft.codeDir);
    base = { ...base, code: { ...code, bundle } };
  }
  const name = typeof base.name === 'string' ? base.name : 'sweep';
  const spec = {
    name,
    ...(options.experiment === undefined ? {} : { experiment: options.experiment }),
    base,
    search,
    objective: { metric: options.objective ?? 'loss', goal: options.maximize ? 'maximize' : 'minimize' },
    ...(options.maxParallel === undefined ? {} : { maxParallel: options.maxParallel }),
    ...(options.maxTrials === undefined ? {} : { maxTrials: options.maxTrials }),
    ...(options.budget === undefined ? {} : { maxCostUsd: Number(options.budget) }),
    ...(options.earlyStopping === undefined ? {} : { earlyStopping: { rule: options.earlyStopping } }),
  };
  const { data: sweep } = await context.client.callWithStatus('POST', '/sweeps', SweepAnswerSchema, { body: { spec, clientToken: options.clientToken } });
  if (context.json) printJson(context, sweep);
  else {
    context.err(`Submitted sweep ${sweep.sweepId}: ${sweep.trials} trial(s) in experiment ${sweep.experiment}`);
    context.out(sweep.sweepId);
    context.err(`Watch it with: runctl sweeps status ${sweep.sweepId}; compare with: runctl compare ${sweep.experiment}`);
  }
  return 0;
}

const SweepViewSchema = z.object({
  sweep: z.looseObject({
    sweepId: z.string(),
    status: z.string(),
    statusReason: z.string().optional(),
    experiment: z.string(),
    trials: z.number(),
    launched: z.number(),
    finished: z.number(),
    skipped: z.number(),
    costUsd: z.number(),
    best: z.object({ runId: z.string(), value: z.number() }).optional(),
  }),
  trials: z.array(z.looseObject({ trial: z.number(), runId: z.string(), state: z.string(), runStatus: z.string().optional(), hyperparameters: z.record(z.string(), z.string()) })),
});

/** `runctl sweeps status SWEEP`: where the sweep is, and its trials. */
export async function sweepStatus(context: CommandContext, sweepId: string): Promise<number> {
  const view = await context.client.call('GET', `/sweeps/${encodeURIComponent(sweepId)}`, SweepViewSchema);
  if (context.json) {
    printJson(context, view);
    return 0;
  }
  const s = view.sweep;
  context.out(`Sweep       ${s.sweepId} (experiment ${s.experiment})`);
  context.out(`Status      ${s.status}${s.statusReason === undefined ? '' : ` — ${s.statusReason}`}`);
  context.out(`Trials      ${s.launched} launched, ${s.finished} finished, ${s.skipped} skipped of ${s.trials}`);
  context.out(`Cost        ${usd(s.costUsd)} (sum of the ended trials)`);
  if (s.best !== undefined) context.out(`Best        ${s.best.runId}: ${s.best.value}`);
  for (const t of view.trials) {
    context.out(`  ${String(t.trial).padStart(4)}  ${t.runId}  ${t.runStatus ?? t.state}  ${Object.entries(t.hyperparameters).map(([k, v]) => `${k}=${v}`).join(',')}`);
  }
  return 0;
}

/** `runctl sweeps stop SWEEP`. */
export async function stopSweep(context: CommandContext, sweepId: string): Promise<number> {
  const sweep = await context.client.call('POST', `/sweeps/${encodeURIComponent(sweepId)}/stop`, z.looseObject({ sweepId: z.string(), status: z.string() }));
  if (context.json) printJson(context, sweep);
  else context.out(`Sweep ${sweep.sweepId} is ${sweep.status}: no more trials; the running ones checkpoint and stop`);
  return 0;
}
