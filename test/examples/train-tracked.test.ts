import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LOCAL_OWNER, LOCAL_SECRETS_PREFIX } from '../../local/secrets';
import { parseRunSpec } from '../../shared/domain/run-spec';

// examples/trackers/train_tracked.py run as the agent runs it, with stand-ins for the wandb and
// mlflow packages (test/fixtures/trackers) or without them: runctl's JSON metric lines are there
// either way, the trackers get the same numbers, and a resumed attempt continues the same runs.

const SCRIPT = new URL('../../examples/trackers/train_tracked.py', import.meta.url).pathname;
const FAKES = new URL('../fixtures/trackers', import.meta.url).pathname;
const KEY = 'wandb-key-value-that-must-not-be-printed';

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

interface Finished {
  code: number | null;
  stdout: string;
  metrics: Array<Record<string, unknown>>;
}

function run(args: string[], env: Record<string, string>, stopAfterCheckpoint?: string): Promise<Finished> {
  const child = spawn('python3', [SCRIPT, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stopAfterCheckpoint !== undefined && existsSync(stopAfterCheckpoint)) child.kill('SIGTERM');
  });
  child.stderr.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  return new Promise((resolve) =>
    child.on('close', (code) =>
      resolve({
        code,
        stdout,
        metrics: stdout
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .filter((line) => typeof line.loss === 'number'),
      }),
    ),
  );
}

function contractEnv(): { root: string; env: Record<string, string> } {
  const root = mkdtempSync(join(tmpdir(), 'runctl-tracked-'));
  roots.push(root);
  return {
    root,
    env: { RUNCTL_RUN_ID: 'r-0123456789abcdef', RUNCTL_CHECKPOINT_DIR: join(root, 'ckpt'), RUNCTL_OUTPUT_DIR: join(root, 'out'), RUNCTL_RESUME_FROM: '' },
  };
}

const calls = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) : []);

describe('the tracker example', () => {
  it('trains and reports to runctl alone when neither package is installed, even with their settings present', async () => {
    const { root, env } = contractEnv();

    const result = await run(['--epochs', '3'], { ...env, WANDB_API_KEY: KEY, MLFLOW_TRACKING_URI: 'http://127.0.0.1:9' });

    expect(result.code).toBe(0);
    expect(result.metrics.map((m) => m.epoch)).toEqual([1, 2, 3]);
    expect(result.stdout).toContain('the wandb package is not installed: skipped');
    expect(result.stdout).toContain('the mlflow package is not installed: skipped');
    expect(result.stdout).not.toContain(KEY);
    expect(existsSync(join(root, 'out', 'model.json'))).toBe(true);
  });

  it('logs the same numbers to W&B and MLflow as to runctl, and a resumed attempt continues the same tracker runs', async () => {
    const { root, env } = contractEnv();
    const log = join(root, 'tracker-calls.jsonl');
    const trackers = { ...env, PYTHONPATH: FAKES, FAKE_TRACKER_LOG: log, WANDB_API_KEY: KEY, WANDB_PROJECT: 'imagenet', MLFLOW_TRACKING_URI: 'http://127.0.0.1:9' };

    // Attempt 1 is interrupted after its first checkpoint; attempt 2 resumes from it.
    const first = await run(['--epochs', '4', '--min-epoch-seconds', '0.3'], trackers, join(env.RUNCTL_CHECKPOINT_DIR ?? '', 'state.json'));
    const second = await run(['--epochs', '4'], { ...trackers, RUNCTL_RESUME_FROM: env.RUNCTL_CHECKPOINT_DIR ?? '' });

    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    const epochs = [...first.metrics, ...second.metrics].map((m) => m.epoch);
    expect(first.metrics.length).toBeLessThan(4);
    expect(epochs).toEqual([1, 2, 3, 4]);
    const recorded = calls(log);
    const inits = recorded.filter((c) => c.call === 'wandb.init');
    expect(inits).toHaveLength(2);
    for (const init of inits) expect(init).toMatchObject({ id: 'r-0123456789abcdef', resume: 'allow', project: 'imagenet', key_set: true });
    const wandbSteps = recorded.filter((c) => c.call === 'wandb.log').map((c) => c.step);
    expect(wandbSteps).toEqual(epochs);
    const mlflowLosses = recorded.filter((c) => c.call === 'mlflow.log_metrics').map((c) => (c.metrics as { loss: number }).loss);
    expect(mlflowLosses.map((l) => Math.round(l * 1e6) / 1e6)).toEqual([...first.metrics, ...second.metrics].map((m) => m.loss));
    const starts = recorded.filter((c) => c.call === 'mlflow.start_run');
    expect(starts[0]).toMatchObject({ run_id: null, run_name: 'r-0123456789abcdef' });
    expect(starts[1]?.run_id).toEqual(expect.any(String));
    expect(recorded.filter((c) => c.call === 'mlflow.end_run').map((c) => c.status)).toEqual(['KILLED', 'FINISHED']);
    expect(first.stdout + second.stdout + readFileSync(log, 'utf8')).not.toContain(KEY);
  });
});

describe('examples/trackers/run.local.yaml', () => {
  it("names the W&B key under the local owner's secrets path, as runctl dev accepts it", () => {
    const text = readFileSync(new URL('../../examples/trackers/run.local.yaml', import.meta.url), 'utf8');
    const { code, ...rest } = z.looseObject({ code: z.object({ entrypoint: z.string() }).loose() }).parse(parseYaml(text));
    const spec = parseRunSpec(
      { ...rest, code: { bundle: `s3://runctl-artifacts/bundles/${'a'.repeat(64)}.tar.gz`, entrypoint: code.entrypoint }, instance: { types: ['local.sandbox'] } },
      { runsBucket: 'runctl-artifacts', secrets: { prefix: LOCAL_SECRETS_PREFIX, owner: LOCAL_OWNER } },
    );

    expect(spec.secrets).toEqual({ WANDB_API_KEY: expect.stringMatching(/^ssm:\/runctl\/local\/secrets\/[0-9a-f]{32}\/wandb-key$/) });
    expect(spec.code.entrypoint).toBe('train_tracked.py');
  });
});
