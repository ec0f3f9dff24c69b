import { GetObjectTaggingCommand } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { AgentWorld, BUCKET, waitFor } from './agent-harness';

// Real bash and AWS CLI processes: slow on a loaded 2-core machine, never flaky by design.
vi.setConfig({ testTimeout: 120_000 });

const world = new AgentWorld();
beforeAll(() => world.start());
afterAll(() => world.stop());

const PointerSchema = z.object({
  uri: z.string(),
  attempt: z.number(),
  seq: z.number(),
  createdAt: z.string(),
  files: z.number(),
  bytes: z.number(),
});
const SuccessOutputSchema = z.object({
  exitCode: z.literal(0),
  checkpoint: PointerSchema,
  outputsManifest: z.string(),
  metrics: z.record(z.string(), z.number()),
});
const ReceivedSchema = z.object({
  argv: z.array(z.string()),
  runId: z.string(),
  attempt: z.string(),
  resumeFrom: z.string(),
  restored: z.array(z.string()),
  custom: z.string().nullable(),
  niceness: z.number(),
});

function received(root: string) {
  return ReceivedSchema.parse(JSON.parse(readFileSync(join(root, 'opt/runctl/output/received.json'), 'utf8')));
}

describe('agent: a training script that exits 0', () => {
  it('uploads checkpoints, metrics, log and outputs, then calls back success', async () => {
    const release = join(world.newRoot(), 'release');
    const run = await world.launch({
      env: { FIXTURE_MODE: 'periodic', FIXTURE_UNTIL_FILE: release, FIXTURE_CUSTOM: 'from-env' },
      config: { checkpoint: { intervalSeconds: 1 } },
    });
    const completed = async () =>
      (await world.keys(`runs/${run.runId}/checkpoints/`)).filter((k) => k.endsWith('/_COMPLETE.json')).length;
    // The script keeps saving until two periodic snapshots are complete in S3.
    await waitFor(async () => (await completed()) >= 2, 'two periodic checkpoints', 60_000);
    // The live shipper's chunks are in S3 while the script runs.
    const liveChunks = () => world.keys(`runs/${run.runId}/live/attempt-1/`);
    expect((await liveChunks()).some((k) => /\/log-\d{12}$/.test(k))).toBe(true);
    writeFileSync(release, '');

    const outcome = await run.outcome;
    await run.waitForAgentExit();

    expect(outcome.kind).toBe('success');
    const output = SuccessOutputSchema.parse(outcome.kind === 'success' ? outcome.output : undefined);
    const prefix = `runs/${run.runId}`;
    expect(output.outputsManifest).toBe(`s3://${BUCKET}/${prefix}/outputs/_manifest.json`);
    expect(output.metrics.loss).toBeGreaterThan(0);
    expect(output.metrics.val_accuracy).toBeGreaterThan(0.5);

    // Periodic sync every second while the script saved every 0.3 s: several immutable snapshots.
    const keys = await world.keys(`${prefix}/checkpoints/`);
    const snapshots = keys.filter((k) => k.endsWith('/_COMPLETE.json'));
    expect(snapshots.length).toBeGreaterThanOrEqual(2);
    for (const complete of snapshots) {
      expect(keys).toContain(complete.replace('_COMPLETE.json', 'model.ckpt'));
    }
    const latest = PointerSchema.parse(JSON.parse((await world.text(`${prefix}/checkpoints/latest.json`)) ?? ''));
    expect(latest).toEqual(output.checkpoint);
    expect(latest.uri).toMatch(new RegExp(`^s3://${BUCKET}/${prefix}/checkpoints/0001-\\d{6}/$`));
    expect(latest.attempt).toBe(1);
    expect(latest.seq).toBe(snapshots.length);
    expect(keys).toContain(`${latest.uri.replace(`s3://${BUCKET}/`, '')}_COMPLETE.json`);
    // The final checkpoint is the script's last save.
    const finalStep = JSON.parse((await world.text(`${latest.uri.replace(`s3://${BUCKET}/`, '')}model.ckpt`)) ?? '');
    expect(finalStep.step).toBe(output.metrics.step);

    const manifest = JSON.parse((await world.text(`${prefix}/outputs/_manifest.json`)) ?? '');
    expect(manifest.files.map((f: { key: string }) => f.key).sort()).toEqual(['model.bin', 'received.json']);
    expect(await world.text(`${prefix}/outputs/model.bin`)).toMatch(/^weights after \d+ steps$/);

    // One metrics line per report: the JSON line and the regex line.
    const metrics = ((await world.text(`${prefix}/metrics.jsonl`)) ?? '').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.length).toBe(2 * (output.metrics.step ?? 0));
    expect(metrics[0]).toMatchObject({ attempt: 1, step: 1, loss: 1 });
    expect(metrics[0].note).toBeUndefined();
    expect(metrics[1]).toMatchObject({ attempt: 1, val_accuracy: 0.5 });
    expect(typeof metrics[0].ts).toBe('string');

    const log = (await world.text(`${prefix}/logs/attempt-1.log`)) ?? '';
    expect(log).toContain('starting in mode periodic');
    expect(log).toContain('training exited with code 0');
    // The bucket's lifecycle rule expires logs by this tag.
    const tagging = await world.s3Client.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: `${prefix}/logs/attempt-1.log` }));
    expect(tagging.TagSet).toEqual([{ Key: 'runctl:kind', Value: 'log' }]);
    // The consolidated log and metrics hold every chunk: the agent deleted them after its report.
    await waitFor(async () => (await liveChunks()).length === 0, 'the live chunks pruned', 30_000);

    const env = received(run.root);
    expect(env).toMatchObject({ runId: run.runId, attempt: '1', resumeFrom: '', custom: 'from-env' });
    // Ten steps below the agent's priority (the agent runs at this process's niceness).
    expect(env.niceness).toBe(Math.min(19, getPriority() + 10));
  });
});

describe('agent: a training script that exits non-zero', () => {
  it('calls back Training.Failed with the exit code and the tail of the log', async () => {
    const run = await world.launch({ env: { FIXTURE_MODE: 'fail' } });

    const outcome = await run.outcome;

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Training.Failed' });
    const cause = z
      .object({ exitCode: z.number(), logTail: z.string() })
      .parse(outcome.kind === 'failure' ? outcome.cause : undefined);
    expect(cause.exitCode).toBe(3);
    expect(cause.logTail).toContain('Traceback: something broke');
    expect(cause.logTail).not.toContain('line 5 of a failing run');
    expect(cause.logTail.split('\n').length).toBeLessThanOrEqual(40);
    expect(cause.logTail.length).toBeLessThanOrEqual(4000);
  });
});

describe('agent: hostile arguments and the task token', () => {
  it('passes every argv element literally and never exposes the token', async () => {
    const hostile = ['--name', '$(touch canary)', '`touch canary2`', 'a; touch canary3', `it's "quoted"`, 'two\nlines', '*', ''];
    const run = await world.launch({
      env: { FIXTURE_MODE: 'periodic', FIXTURE_SECONDS: '2.5' },
      argv: ['python3', 'train.py', ...hostile],
    });

    // While training runs, no process shows the token in its command line.
    await waitFor(() => existsSync(join(run.root, 'opt/runctl/output/received.json')), 'the training to start');
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    expect(ps).toContain('train.py');
    expect(ps).not.toContain(run.token);

    const outcome = await run.outcome;
    await run.waitForAgentExit();

    expect(outcome.kind).toBe('success');
    expect(received(run.root).argv).toEqual(hostile);
    const codeDir = join(run.root, 'opt/runctl/work/code');
    for (const canary of ['canary', 'canary2', 'canary3']) {
      expect(existsSync(join(codeDir, canary))).toBe(false);
      expect(existsSync(join(run.stateDir, canary))).toBe(false);
    }
    expect(run.command).not.toContain(run.token);
    const prefix = `runs/${run.runId}`;
    expect((await world.text(`${prefix}/logs/attempt-1.log`)) ?? '').not.toContain(run.token);
    expect((await world.text(`${prefix}/metrics.jsonl`)) ?? '').not.toContain(run.token);
    expect(readFileSync(join(run.stateDir, 'agent.log'), 'utf8')).not.toContain(run.token);
    // The token never reached the instance at all: no file under its root holds it.
    expect(filesHolding(run.root, run.token)).toEqual([]);
  });

  it('reaches the current task after LaunchTraining is retried with a new token', async () => {
    const run = await world.launch({ env: { FIXTURE_MODE: 'periodic', FIXTURE_SECONDS: '3' } });
    await waitFor(() => existsSync(join(run.root, 'opt/runctl/output/received.json')), 'the training to start');

    // A retried LaunchTraining stores a new token; the old one is no longer waited on.
    const newToken = world.rotateToken(run);
    const outcome = await run.outcome;

    expect(outcome.kind).toBe('success');
    expect(world.record(run.runId)?.taskToken).toBe(newToken);
    expect(filesHolding(run.root, newToken)).toEqual([]);
  });
});

/** Files under `root` whose bytes contain `secret`. */
function filesHolding(root: string, secret: string): string[] {
  const found: string[] = [];
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.isFile() && readFileSync(path).includes(secret)) found.push(path);
    }
  };
  visit(root);
  return found;
}

describe('agent: launched twice for the same attempt', () => {
  it('starts training once; the second launch exits 0 and does nothing', async () => {
    const run = await world.launch({ env: { FIXTURE_MODE: 'periodic', FIXTURE_SECONDS: '1' } });

    const second = await run.relaunch();
    const outcome = await run.outcome;
    await run.waitForAgentExit();
    const third = await run.relaunch();

    expect(outcome.kind).toBe('success');
    expect(JSON.parse(second)).toEqual({ launched: false, reason: expect.any(String) });
    expect(JSON.parse(third).launched).toBe(false);
    const log = readFileSync(join(run.stateDir, 'upload/logs/attempt-1.log'), 'utf8');
    expect(log.match(/training started/g)).toHaveLength(1);
  });
});

describe('agent: files over the direct-transfer limit', () => {
  it('go up through the AWS CLI, and a checkpoint whose marker lists them comes back through it too', async () => {
    // Every file is over 1 byte: the helper declines (exit 3) and the CLI's multipart transfer takes them.
    const large = { RUNCTL_AGENT_DIRECT_MAX_BYTES: '1' };
    const release = join(world.newRoot(), 'release');
    const run = await world.launch({ env: { FIXTURE_MODE: 'periodic', FIXTURE_UNTIL_FILE: release }, config: { checkpoint: { intervalSeconds: 1 } }, instanceEnv: large });
    await waitFor(async () => (await world.keys(`runs/${run.runId}/checkpoints/`)).some((k) => k.endsWith('/_COMPLETE.json')), 'a checkpoint', 60_000);
    writeFileSync(release, '');
    const outcome = await run.outcome;
    await run.waitForAgentExit();
    expect(outcome.kind).toBe('success');
    const prefix = `runs/${run.runId}`;
    const latest = PointerSchema.parse(JSON.parse((await world.text(`${prefix}/checkpoints/latest.json`)) ?? ''));
    const checkpointKey = latest.uri.replace(`s3://${BUCKET}/`, '');
    expect(JSON.parse((await world.text(`${checkpointKey}model.ckpt`)) ?? '').step).toBeGreaterThan(0);
    expect(JSON.parse((await world.text(`${checkpointKey}_COMPLETE.json`)) ?? '').paths).toEqual([{ key: 'model.ckpt', bytes: expect.any(Number) }]);
    expect(await world.text(`${prefix}/outputs/model.bin`)).toMatch(/^weights after \d+ steps$/);
    expect(JSON.parse((await world.text(`${prefix}/outputs/_manifest.json`)) ?? '').files).toHaveLength(2);

    const resumed = await world.launch({ runId: run.runId, attempt: 2, env: { FIXTURE_MODE: 'fail' }, resumeFrom: latest.uri, instanceEnv: large });
    expect(await resumed.outcome).toMatchObject({ kind: 'failure', error: 'Training.Failed' });
    await resumed.waitForAgentExit();
    expect(received(resumed.root).restored).toEqual(['model.ckpt']);
  });
});

describe('agent: resuming from a checkpoint', () => {
  it('restores the checkpoint into RUNCTL_RESUME_FROM and keeps earlier metrics', async () => {
    const runId = 'run-resume-1';
    const prefix = `runs/${runId}`;
    await world.put(`${prefix}/checkpoints/0001-000004/model.ckpt`, '{"step": 4}');
    await world.put(`${prefix}/checkpoints/0001-000004/opt/state.bin`, 'optimizer');
    await world.put(`${prefix}/checkpoints/0001-000004/_COMPLETE.json`, '{}');
    await world.put(`${prefix}/metrics.jsonl`, '{"ts":"2024-01-01T00:00:00.000Z","attempt":1,"loss":9}\n');

    const run = await world.launch({
      runId,
      attempt: 2,
      env: { FIXTURE_MODE: 'fail' },
      resumeFrom: `s3://${BUCKET}/${prefix}/checkpoints/0001-000004/`,
    });
    const outcome = await run.outcome;
    await run.waitForAgentExit();

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Training.Failed' });
    const env = received(run.root);
    expect(env.attempt).toBe('2');
    expect(env.resumeFrom).toBe(join(run.root, 'opt/runctl/work/resume'));
    expect(env.restored).toEqual(['model.ckpt', 'opt/state.bin']);
    const metrics = ((await world.text(`${prefix}/metrics.jsonl`)) ?? '').trim().split('\n');
    expect(JSON.parse(metrics[0] ?? '')).toMatchObject({ attempt: 1, loss: 9 });
    expect(await world.keys(`${prefix}/logs/`)).toEqual([`${prefix}/logs/attempt-2.log`]);
  });

  it('calls back Run.PrecheckFailed when the checkpoint to resume from is missing', async () => {
    const run = await world.launch({
      env: { FIXTURE_MODE: 'periodic' },
      resumeFrom: `s3://${BUCKET}/runs/nowhere/checkpoints/0001-000001/`,
    });

    const outcome = await run.outcome;

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Run.PrecheckFailed' });
    expect(existsSync(join(run.root, 'opt/runctl/output/received.json'))).toBe(false);
  });
});
