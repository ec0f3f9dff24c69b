import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runCli } from '../cli/run-cli';
import { ROOT, startRunctlDev, type RunningDev } from '../support/runctl-dev';

const SweepViewSchema = z.object({
  sweep: z.object({ sweepId: z.string(), status: z.string(), launched: z.number(), skipped: z.number(), trials: z.number() }),
  trials: z.array(z.object({ runId: z.string(), state: z.string(), runStatus: z.string().optional() })),
});

/**
 * `runctl dev` serves the sweep routes over the real sweep machine: a bad sweep is a 400 naming
 * the field; `runctl sweep` packs and submits one; `runctl sweeps stop` stops it while its first
 * trial trains — that trial's run is cancelled through its own train-run execution, the other
 * trials never launch, and the sweep ends STOPPED.
 */
describe('runctl dev serves sweeps', { timeout: 240_000 }, () => {
  let dev: RunningDev;
  let url: string;
  let env: Record<string, string>;
  const cli = (...args: string[]) => runCli(args, env, ROOT);
  const view = async (sweepId: string) => SweepViewSchema.parse(await (await fetch(`${url}/sweeps/${sweepId}`)).json());

  beforeAll(async () => {
    dev = await startRunctlDev('runctl-dev-sweeps-');
    url = dev.url;
    env = dev.env;
  }, 120_000);

  afterAll(async () => dev.stop());

  it('answers a sweep without a base spec with a 400 naming spec.base', async () => {
    const response = await fetch(`${url}/sweeps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ spec: { name: 'no-base', search: { grid: { lr: [0.1] } }, objective: { metric: 'loss' } } }),
    });
    expect(response.status).toBe(400);
    expect(JSON.stringify(await response.json())).toContain('spec.base');
  });

  it('stops a sweep while its first trial trains: that run is cancelled, the others skipped, the sweep STOPPED', async () => {
    const submitted = await cli(
      'sweep', 'examples/linear', '--entrypoint', 'train.py', '--hyperparameters', 'epochs=40,min_epoch_seconds=1',
      '--grid', 'lr=0.3,0.1,0.03', '--max-parallel', '1',
    );
    expect(submitted.code, submitted.stderr).toBe(0);
    const sweepId = /^(sw-[0-9a-f]{16})$/m.exec(submitted.stdout)?.[1] ?? '';
    expect(sweepId).not.toBe('');

    let first = '';
    for (const until = Date.now() + 150_000; Date.now() < until && first === ''; await new Promise((r) => setTimeout(r, 500))) {
      const trial = (await view(sweepId)).trials.find((t) => t.state === 'LAUNCHED');
      const run = trial === undefined ? undefined : ((await (await fetch(`${url}/runs/${trial.runId}`)).json()) as { status?: string });
      if (trial !== undefined && run?.status === 'TRAINING') first = trial.runId;
    }
    expect(first, 'the first trial never trained').not.toBe('');

    const stopped = await cli('sweeps', 'stop', sweepId);
    expect(stopped.code, stopped.stderr).toBe(0);
    let final = await view(sweepId);
    for (const until = Date.now() + 90_000; Date.now() < until && final.sweep.status !== 'STOPPED'; await new Promise((r) => setTimeout(r, 500))) {
      final = await view(sweepId);
    }
    expect(final.sweep).toMatchObject({ status: 'STOPPED', trials: 3, launched: 1, skipped: 2 });
    expect(final.trials.find((t) => t.runId === first)?.runStatus).toBe('CANCELLED');

    const status = await cli('sweeps', 'status', sweepId);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^Status {6}STOPPED/m);
    expect(status.stdout).toContain('1 launched, 1 finished, 2 skipped of 3');
    // Stopping it again is a conflict, not a silent success.
    expect((await cli('sweeps', 'stop', sweepId)).code).not.toBe(0);
  });
});
