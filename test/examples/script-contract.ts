import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

/**
 * Checks an example training script against the runctl contract (docs/agent.md) directly, as
 * the agent runs it: a checkpoint every epoch in RUNCTL_CHECKPOINT_DIR, JSON metrics lines,
 * checkpoint-and-exit on SIGTERM, resume from RUNCTL_RESUME_FROM, the model in RUNCTL_OUTPUT_DIR.
 */

const SCRIPTS = new URL('../../examples/linear/', import.meta.url).pathname;

interface Finished {
  code: number | null;
  lines: Array<Record<string, unknown>>;
}

function start(script: string, args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<Finished> } {
  const child = spawn('python3', [join(SCRIPTS, script), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const done = new Promise<Finished>((resolve) =>
    child.on('exit', (code) =>
      resolve({
        code,
        lines: out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l)),
      }),
    ),
  );
  return { child, done };
}

const epochsOf = (lines: Array<Record<string, unknown>>) => lines.filter((l) => typeof l.epoch === 'number' && 'loss' in l).map((l) => l.epoch);

/** Runs the whole contract for one script. */
export async function checkScriptContract(script: string, modelFile: string): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'runctl-example-'));
  const checkpointDir = join(root, 'checkpoints');
  const env = { RUNCTL_CHECKPOINT_DIR: checkpointDir, RUNCTL_OUTPUT_DIR: join(root, 'output'), RUNCTL_DATA_DIR: join(root, 'no-data'), RUNCTL_RESUME_FROM: '' };
  // The hold point lies past the interruption: only a fresh start may wait there, never the resume.
  const args = ['--epochs', '6', '--hidden', '8', '--min-epoch-seconds', '0.4', '--hold-after-epoch', '5'];

  // Interrupted after two epochs: it stops at an epoch boundary with a checkpoint, and no output.
  const first = start(script, args, env);
  const hasCheckpoint = () => readdirSync(root).includes('checkpoints') && readdirSync(checkpointDir).includes(modelFile);
  await expect.poll(hasCheckpoint, { timeout: 30_000, interval: 50 }).toBe(true);
  await new Promise((r) => setTimeout(r, 500));
  first.child.kill('SIGTERM');
  const stopped = await first.done;
  const trained = epochsOf(stopped.lines);
  expect(stopped.code === 0 || stopped.code === 143).toBe(true);
  expect(trained.length).toBeGreaterThan(0);
  expect(trained.length).toBeLessThan(6);
  expect(readdirSync(checkpointDir)).toContain(modelFile);

  // Resumed from that checkpoint: it goes on with the next epoch, through the hold point without
  // waiting, and finishes with the model.
  const second = start(script, args, { ...env, RUNCTL_RESUME_FROM: checkpointDir });
  const finished = await second.done;
  expect(finished.code).toBe(0);
  const resumed = epochsOf(finished.lines);
  expect(resumed[0]).toBe((trained.at(-1) as number) + 1);
  expect(resumed.at(-1)).toBe(6);
  expect(finished.lines.some((l) => l.event === 'holding')).toBe(false);
  expect(finished.lines.every((l) => !('loss' in l) || Number.isFinite(l.loss))).toBe(true);
  expect(readdirSync(join(root, 'output')).length).toBeGreaterThan(0);
}
