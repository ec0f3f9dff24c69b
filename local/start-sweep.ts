import { ApiClient } from '../cli/api-client';
import { compare } from '../cli/commands/experiments';
import { registerModel } from '../cli/commands/models';
import type { CommandContext } from '../cli/context';
import { exampleSpec, prepareExample } from '../examples/linear/prepare';
import type { SweepRecord } from '../shared/ports/sweeps';
import { startHttpApi } from './http-api';
import { LOCAL_OWNER, type LocalBackend } from './runtime';
import { readMetrics, lastValue } from './summary';
import { isTerminal } from '../shared/domain/run-status';

/**
 * `npm start -- --sweep`: a 4-trial grid over the linear example's learning rate on the local
 * backend, through the real sweep machine, with the median stopping rule on. Three rates learn;
 * 0.003 does not, and that trial waits after epoch 3 (checkpointed) until it is stopped
 * (`hold_unless_loss_below`), so the rule always finds it live whatever the machine's speed: it
 * ends STOPPED_EARLY and the three others SUCCEEDED. Then the comparison is printed by
 * `runctl compare`'s own code and the best trial's outputs are registered by `runctl models
 * register`'s, both through the local HTTP API.
 */

/** The grid: three rates that learn this dataset within 3 epochs, and one that does not. */
export const SWEEP_RATES = [1.0, 0.5, 0.3, 0.003] as const;
export const SWEEP_MODEL_NAME = 'linear-sweep';

export async function runSweepDemo(backend: LocalBackend, started: number): Promise<number> {
  // 2,000 rows: an epoch of pure Python SGD takes a fraction of a second, paced to half a second.
  const example = await prepareExample(backend.s3, backend.services.bucket, { dataset: { rows: 2000 }, preferTorch: false });
  console.log(`Code bundle ${example.bundle}\nDataset     ${example.dataset} → /data\nScript      ${example.entrypoint}`);
  const experiment = `lr-sweep-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}`;
  const sweep = await backend.submitSweep({
    spec: {
      name: experiment,
      base: exampleSpec(
        example,
        { epochs: 5, batch_size: 8, hidden: 32, min_epoch_seconds: 0.5, hold_after_epoch: 3, hold_unless_loss_below: 0.5 },
        { name: 'linear-sweep' },
      ),
      search: { grid: { lr: [...SWEEP_RATES] } },
      objective: { metric: 'loss', goal: 'minimize' },
      maxParallel: SWEEP_RATES.length,
      earlyStopping: { rule: 'median', stepKey: 'epoch', minSteps: 2, minTrials: 3 },
    },
  });
  console.log(`Submitted sweep ${sweep.sweepId}: ${sweep.trials} trials of lr ${SWEEP_RATES.join(', ')}, median stopping rule on\n`);

  const final = await follow(backend, sweep.sweepId, started);
  console.log(`\nSweep       ${final.sweepId}: ${final.status} — ${final.statusReason ?? ''}\n`);

  const api = await startHttpApi({ port: 0, experiments: backend.experimentDeps(), models: backend.modelDeps(), identity: LOCAL_OWNER });
  try {
    const context: CommandContext = {
      client: new ApiClient({ endpoint: new URL(api.url), local: true }),
      json: false,
      out: (text) => console.log(text),
      err: (text) => console.log(text),
      pollMs: 1000,
    };
    console.log(`$ runctl compare ${final.experiment}`);
    await compare(context, final.experiment, {});
    if (final.best === undefined) {
      console.log('\nNo trial reported a loss: nothing to register');
      return 1;
    }
    console.log(`\n$ runctl models register ${final.best.runId} --name ${SWEEP_MODEL_NAME}`);
    await registerModel(context, final.best.runId, SWEEP_MODEL_NAME);
  } finally {
    await api.close();
  }
  console.log(`\nWall time   ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return final.status === 'SUCCEEDED' ? 0 : 1;
}

/**
 * One line per trial whenever its status or epoch changes, until the sweep's execution ends and
 * every trial's run has its final status (a stopped trial's run is written STOPPED_EARLY after
 * its execution ends, so the sweep can end first).
 */
async function follow(backend: LocalBackend, sweepId: string, started: number): Promise<SweepRecord> {
  const outcome = backend.waitForSweep(sweepId);
  let done = false;
  void outcome.finally(() => {
    done = true;
  }).catch(() => undefined);
  const last = new Map<string, string>();
  const report = async (): Promise<boolean> => {
    let settled = true;
    const { sweeps } = backend.sweepDeps();
    for (const trial of (await sweeps.listTrials(sweepId, { limit: 100 })).items) {
      const run = await backend.store.get(trial.runId);
      if (run === undefined) continue;
      if (!isTerminal(run.status)) settled = false;
      const metrics = await readMetrics(backend.s3, backend.services.bucket, trial.runId);
      const epoch = lastValue(metrics, 'epoch');
      const loss = lastValue(metrics, 'loss');
      const line = `${trial.runId}  lr ${trial.hyperparameters.lr?.padEnd(6)}  ${run.status.padEnd(14)}${epoch === undefined ? '' : `  epoch ${epoch}  loss ${loss}`}`;
      if (last.get(trial.runId) !== line) console.log(`${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s  ${line}`);
      last.set(trial.runId, line);
      if (run.status === 'STOPPED_EARLY' && last.get(`${trial.runId}#reason`) === undefined) {
        console.log(`         ${run.statusReason ?? ''}`);
        last.set(`${trial.runId}#reason`, 'shown');
      }
    }
    return settled;
  };
  while (!done) {
    await report();
    await Promise.race([outcome.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000))]);
  }
  const deadline = Date.now() + 60_000;
  while (!(await report()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
  return outcome;
}
