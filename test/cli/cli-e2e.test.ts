import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunStatus } from '../../shared/domain/run-status';
import { LOCAL_OWNER, startLocalStack, type LocalStack } from './local-stack';

const BIN = new URL('../../bin/runctl.mjs', import.meta.url).pathname;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface RunningCli {
  /** Resolves once stdout has contained `text`. */
  waitForOutput(text: string): Promise<void>;
  signal(name: NodeJS.Signals): void;
  done: Promise<CliResult>;
}

/** Starts `runctl …` as its own process, the way a user runs it. */
function startCli(args: string[], env: Record<string, string>): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    for (const waiter of waiters.filter((w) => stdout.includes(w.text))) waiter.resolve();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const done = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return {
    waitForOutput: (text) =>
      new Promise<void>((resolve, reject) => {
        if (stdout.includes(text)) return resolve();
        waiters.push({ text, resolve });
        void done.then((result) => reject(new Error(`runctl exited (${String(result.code)}) before printing "${text}":\n${result.stdout}\n${result.stderr}`)));
      }),
    signal: (name) => child.kill(name),
    done,
  };
}

// Each test starts several CLI processes; on a shared 2-core machine one can take seconds.
describe('runctl against the local HTTP API (dynalite + s3rver, Step Functions mocked)', { timeout: 120_000 }, () => {
  let stack: LocalStack;
  let home: string;
  let project: string;
  let env: Record<string, string>;
  const cli = (...args: string[]) => startCli(args, env).done;
  const put = (key: string, body: string) => stack.s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: body }));

  async function advance(runId: string, path: RunStatus[]): Promise<void> {
    for (let i = 1; i < path.length; i += 1) {
      const from = path[i - 1];
      const to = path[i];
      if (from !== undefined && to !== undefined) await stack.deps.store.transition(runId, from, to, { statusReason: `now ${to}` });
    }
  }

  beforeAll(async () => {
    stack = await startLocalStack();
    home = await mkdtemp(join(tmpdir(), 'runctl-home-'));
    project = await mkdtemp(join(tmpdir(), 'runctl-project-'));
    await writeFile(join(project, 'train.py'), 'import sys\nprint("training", sys.argv)\n');
    await writeFile(join(project, '.gitignore'), 'data/\n');
    await writeFile(join(project, '.runctlignore'), '*.ckpt\n');
    await mkdir(join(project, 'data'));
    await writeFile(join(project, 'data', 'train.bin'), 'x'.repeat(4096));
    await writeFile(join(project, 'old.ckpt'), 'weights');
    env = { HOME: home, RUNCTL_ENDPOINT: stack.api.url, RUNCTL_POLL_INTERVAL_MS: '50', AWS_PROFILE: '', AWS_REGION: 'us-east-1' };
  });
  afterAll(async () => {
    await stack.stop();
    await rm(home, { recursive: true, force: true });
    await rm(project, { recursive: true, force: true });
  });

  const submitArgs = () => [
    'submit', project,
    '--entrypoint', 'train.py',
    '--hyperparameters', 'epochs=3,lr=0.001',
    '--instance-type', 'g5.xlarge,g4dn.xlarge',
    '--spot',
    '--data', 's3://datasets/mnist/:/data',
    '--max-cost', '20',
    '--max-runtime', '12h',
    '--name', 'mnist',
  ];

  let runId = '';

  it('submit packs the directory without ignored files, uploads it by hash and starts one run', async () => {
    const result = await cli(...submitArgs());

    expect(result.code, result.stderr).toBe(0);
    runId = result.stdout.trim();
    expect(runId).toMatch(/^r-[0-9a-f]{16}$/);
    expect(result.stderr).toMatch(/Packed .*: 3 files/);
    expect(result.stderr).toContain('Uploaded s3://runctl-local-runs/bundles/');
    const record = await stack.deps.store.get(runId);
    expect(record).toMatchObject({
      owner: LOCAL_OWNER,
      spec: {
        name: 'mnist',
        code: { entrypoint: 'train.py' },
        hyperparameters: { epochs: '3', lr: '0.001' },
        instance: { types: ['g5.xlarge', 'g4dn.xlarge'], spot: true },
        data: [{ source: 's3://datasets/mnist/', target: '/data' }],
        limits: { maxCostUsd: 20, maxRuntime: 43200 },
      },
    });
    const bundle = /^s3:\/\/runctl-local-runs\/(bundles\/[0-9a-f]{64}\.tar\.gz)$/.exec(record?.spec.code.bundle ?? '');
    expect(bundle).not.toBeNull();
    const object = await stack.s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: bundle?.[1] }));
    const tarball = join(home, 'bundle.tar.gz');
    await writeFile(tarball, await object.Body?.transformToByteArray() ?? new Uint8Array());
    expect(spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).sort()).toEqual(['.gitignore', '.runctlignore', 'train.py']);
  });

  it('a repeated submit neither uploads again nor starts a second run; --rerun does', async () => {
    const again = await cli(...submitArgs());
    const rerun = await cli(...submitArgs(), '--rerun');

    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe(runId);
    expect(again.stderr).toContain('Code bundle unchanged');
    expect(again.stderr).toContain('already exists');
    expect(rerun.stdout.trim()).toMatch(/^r-[0-9a-f]{16}$/);
    expect(rerun.stdout.trim()).not.toBe(runId);
    expect(stack.sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input.name)).toEqual([runId, rerun.stdout.trim()]);
  });

  it('status shows the attempts, cost and newest checkpoint; logs, metrics and checkpoints read S3', async () => {
    await advance(runId, ['PENDING', 'VALIDATING', 'PROVISIONING', 'STARTING', 'TRAINING']);
    await stack.deps.store.appendAttempt(runId, {
      attempt: 1, instanceId: 'i-0abc1234def567890', instanceType: 'g5.xlarge', availabilityZone: 'us-east-1a', spot: true, pricePerHourUsd: 0.41, startedAt: '2026-11-25T06:00:00.000Z',
    });
    const prefix = `runs/${runId}`;
    await put(`${prefix}/logs/attempt-1.log`, 'epoch 1 loss 0.9\nepoch 2 loss 0.5\n');
    await put(`${prefix}/metrics.jsonl`, [
      { ts: '2026-11-25T06:01:00Z', attempt: 1, epoch: 1, step: 100, loss: 0.9 },
      { ts: '2026-11-25T06:02:00Z', attempt: 1, epoch: 2, step: 200, loss: 0.5 },
    ].map((m) => JSON.stringify(m)).join('\n') + '\n');
    await put(`${prefix}/checkpoints/0001-000001/model.pt`, 'w');
    await put(`${prefix}/checkpoints/0001-000001/_COMPLETE.json`, '{}');
    await put(`${prefix}/checkpoints/latest.json`, JSON.stringify({ uri: `s3://${stack.bucket}/${prefix}/checkpoints/0001-000001/`, attempt: 1, seq: 1, step: 200, epoch: 2, createdAt: '2026-11-25T06:02:00Z' }));

    const [status, statusJson, logs, metrics, metricsJson, checkpoints, ls] = await Promise.all([
      cli('status', runId),
      cli('status', runId, '--json'),
      cli('logs', runId),
      cli('metrics', runId),
      cli('metrics', runId, '--json'),
      cli('checkpoints', runId),
      cli('ls', '--json'),
    ]);

    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/Status\s+TRAINING — now TRAINING/);
    expect(status.stdout).toMatch(/1\s+i-0abc1234def567890\s+g5\.xlarge\s+us-east-1a\s+spot\s+\$0\.4100\s+2026-11-25 06:00:00Z\s+-\s+running/);
    expect(status.stdout).toMatch(/Checkpoint\s+0001-000001 \(attempt 1, .*\) latest s3:\/\//);
    expect(status.stdout).toMatch(/Cost so far \$0\.00/);
    expect(JSON.parse(statusJson.stdout)).toMatchObject({ runId, status: 'TRAINING', checkpoints: [{ id: '0001-000001', latest: true }] });
    expect(logs.stdout).toBe('epoch 1 loss 0.9\nepoch 2 loss 0.5\n');
    expect(metrics.stdout).toMatch(/TIME\s+attempt\s+epoch\s+step\s+loss/);
    expect(metrics.stdout).toMatch(/2026-11-25 06:02:00Z\s+1\s+2\s+200\s+0\.5/);
    expect(metrics.stdout).toContain('loss over step (2 points)');
    expect(JSON.parse(metricsJson.stdout).metrics).toHaveLength(2);
    expect(checkpoints.stdout).toMatch(/\*\s+0001-000001\s+1\s+200\s+2\s+/);
    expect(JSON.parse(ls.stdout).runs.map((r: { runId: string }) => r.runId)).toContain(runId);
  });

  it('status --follow shows phases and an epoch bar until the run ends; logs -f moves on to the next attempt', async () => {
    const follow = startCli(['status', runId, '--follow'], env);
    await follow.waitForOutput('epoch [');
    // A spot interruption: attempt 1 ends, attempt 2 resumes and finishes.
    await stack.deps.store.updateAttempt(runId, 1, { endedAt: '2026-11-25T06:10:00.000Z', endReason: 'SPOT_INTERRUPTED' });
    await stack.deps.store.transition(runId, 'TRAINING', 'RECOVERING', { statusReason: 'spot interruption', interruptions: 1 });
    await follow.waitForOutput('RECOVERING');
    await stack.deps.store.appendAttempt(runId, { attempt: 2, instanceType: 'g4dn.xlarge', availabilityZone: 'us-east-1b', spot: true, startedAt: '2026-11-25T06:11:00.000Z' });
    await put(`runs/${runId}/logs/attempt-2.log`, 'resumed from 0001-000001\nepoch 3 loss 0.2\n');
    await advance(runId, ['RECOVERING', 'PROVISIONING', 'STARTING', 'TRAINING', 'FINALIZING', 'SUCCEEDED']);

    const followed = await follow.done;
    const logs = await cli('logs', runId, '-f', '--attempt', '1');
    const allLogs = await cli('logs', runId, '--follow', '--tail', '1', '--attempt', '2');

    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toMatch(/TRAINING · attempt 1 g5\.xlarge us-east-1a spot \$0\.4100\/h/);
    expect(followed.stdout).toContain('epoch [####################----------] 2/3  step 200  loss=0.5');
    expect(followed.stdout).toContain('attempt 2 g4dn.xlarge us-east-1b spot');
    expect(followed.stdout).toContain(`Run ${runId} ended SUCCEEDED`);
    expect(logs.stdout).toBe('epoch 1 loss 0.9\nepoch 2 loss 0.5\n');
    expect(logs.stderr).toContain(`run ${runId} ended SUCCEEDED`);
    expect(allLogs.stdout).toBe('epoch 3 loss 0.2\n');
  });

  it('logs -f without --attempt follows the first attempt into the second', async () => {
    const rerunId = String(stack.sfn.commandCalls(StartExecutionCommand)[1]?.args[0].input.name);
    await advance(rerunId, ['PENDING', 'VALIDATING', 'PROVISIONING', 'STARTING', 'TRAINING']);
    await stack.deps.store.appendAttempt(rerunId, { attempt: 1, spot: true, startedAt: new Date().toISOString() });
    await put(`runs/${rerunId}/logs/attempt-1.log`, 'one\n');
    const follow = startCli(['logs', rerunId, '-f'], env);
    await follow.waitForOutput('one\n');
    await stack.deps.store.appendAttempt(rerunId, { attempt: 2, spot: true, startedAt: new Date().toISOString() });
    await put(`runs/${rerunId}/logs/attempt-2.log`, 'two\n');
    await follow.waitForOutput('two\n');
    await stack.deps.store.transition(rerunId, 'TRAINING', 'FAILED_USER');

    const result = await follow.done;

    expect(result.code).toBe(0);
    expect(result.stdout).toBe('one\ntwo\n');
    expect(result.stderr).toContain('--- attempt 2 ---');
  });

  it('Ctrl-C while following leaves the run going and says how to reattach; cancel stops it', async () => {
    const submitted = await cli(...submitArgs(), '--client-token', 'ctrl-c-run');
    const live = submitted.stdout.trim();
    const follow = startCli(['status', live, '--follow'], env);
    await follow.waitForOutput('PENDING');
    follow.signal('SIGINT');
    const interrupted = await follow.done;
    const stillThere = await stack.deps.store.get(live);
    const cancelled = await cli('cancel', live);
    const again = await cli('cancel', runId);

    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toContain(`Run ${live} goes on`);
    expect(interrupted.stderr).toContain(`runctl status ${live} --follow`);
    expect(stillThere?.status).toBe('PENDING');
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toMatch(/CANCELLING — Cancel requested: checkpointing, then releasing/);
    expect((await stack.deps.store.get(live))?.status).toBe('CANCELLING');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already ended with status SUCCEEDED/);
  });

  it('errors say what to do: unknown run, invalid spec fields, unreachable endpoint, no endpoint', async () => {
    const missing = await cli('status', 'r-00000000deadbeef');
    const invalid = await cli('submit', project, '--entrypoint', 'train.py', '--instance-type', 'G5 XL', '--data', 'datasets/mnist');
    const unreachable = await startCli(['ls'], { ...env, RUNCTL_ENDPOINT: 'http://127.0.0.1:9' }).done;
    const unconfigured = await startCli(['ls'], { ...env, RUNCTL_ENDPOINT: '' }).done;

    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('Run r-00000000deadbeef not found. `runctl ls` lists your runs.');
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/instance\.types\.0: must be an EC2 instance type/);
    expect(invalid.stderr).toMatch(/data\.0: must be "s3:\/\/bucket/);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/Cannot reach the runctl API at http:\/\/127\.0\.0\.1:9 .*runctl dev/);
    expect(unconfigured.stderr).toMatch(/No runctl API endpoint is configured/);
  });
});
