import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { z } from 'zod';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { checkpointNowCommand } from '../../shared/agent/commands';
import { dockerKillArgv, dockerRunArgv } from '../../shared/agent/docker';
import { localClientConfig } from '../support/aws-clients';
import { secretsEndpoints } from '../support/secrets';
import { AgentWorld, BUCKET, waitFor, type Launched } from './agent-harness';

// Real bash and AWS CLI processes, a fake docker CLI: slow on a loaded machine, never timing-based.
vi.setConfig({ testTimeout: 120_000 });

const REGISTRY = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const IMAGE = `${REGISTRY}/runctl/training@sha256:${'5e2b'.repeat(16)}`;
const FAKE_DOCKER = fileURLToPath(new URL('./fake-docker.sh', import.meta.url));

const world = new AgentWorld();
const dirs: string[] = [];
beforeAll(() => world.start());
afterAll(async () => {
  await world.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A bin dir whose `docker` is the fake, and the dir it records calls in. */
function fakeDocker(options: { gpu?: boolean } = {}): { env: Record<string, string>; calls: () => string[][]; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'runctl-fake-docker-'));
  dirs.push(dir);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  copyFileSync(FAKE_DOCKER, join(bin, 'docker'));
  chmodSync(join(bin, 'docker'), 0o755);
  if (options.gpu === true) {
    // What nvidia-smi -L prints on a g5.xlarge.
    writeFileSync(join(bin, 'nvidia-smi'), '#!/bin/sh\necho "GPU 0: NVIDIA A10G (UUID: GPU-5e2b0c8a-1d2e-4f3a-9b8c-7d6e5f4a3b2c)"\n');
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
  }
  return {
    dir,
    env: {
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      FAKE_DOCKER_DIR: dir,
      // The registry password comes from ECR (moto here), fetched by the agent on the instance.
      AWS_ENDPOINT_URL_ECR: inject('motoEndpoint'),
    },
    // Complete lines only: a call may be appending its line while the test reads.
    calls: () =>
      existsSync(join(dir, 'calls.jsonl'))
        ? readFileSync(join(dir, 'calls.jsonl'), 'utf8')
            .split('\n')
            .slice(0, -1)
            .map((line) => z.array(z.string()).parse(JSON.parse(line)))
        : [],
  };
}

const dockerConfig = {
  image: IMAGE,
  registry: REGISTRY,
  region: 'us-east-1',
  mounts: [
    { path: '/data', readOnly: false },
    { path: '/mnt/dataset', readOnly: true },
  ],
};

/** The argv dockerRunArgv gives for this run, with the instance paths under the test's root. */
function expectedRun(run: Launched, grace: number, argv: string[], env: Record<string, string>, gpus: 'all' | 'none', resume = '', secretNames: string[] = []) {
  const at = (path: string) => `${run.root}${path}`;
  return dockerRunArgv({
    image: IMAGE,
    name: `runctl-${run.runId}-${run.attempt}`,
    gpus,
    mounts: [
      { source: at('/data'), target: at('/data'), readOnly: false },
      { source: at('/mnt/dataset'), target: at('/mnt/dataset'), readOnly: true },
      { source: at('/opt/runctl/checkpoints'), target: at('/opt/runctl/checkpoints'), readOnly: false },
      { source: at('/opt/runctl/output'), target: at('/opt/runctl/output'), readOnly: false },
      { source: at('/opt/runctl/work/code'), target: at('/opt/runctl/work/code'), readOnly: false },
      ...(resume ? [{ source: resume, target: resume, readOnly: true }] : []),
    ],
    userEnv: env,
    secretNames,
    env: {
      RUNCTL_RUN_ID: run.runId,
      RUNCTL_ATTEMPT: String(run.attempt),
      RUNCTL_CHECKPOINT_DIR: at('/opt/runctl/checkpoints'),
      RUNCTL_RESUME_FROM: resume,
      RUNCTL_OUTPUT_DIR: at('/opt/runctl/output'),
      // The local instance root, so a script's fixed paths resolve inside the container as outside.
      RUNCTL_INSTANCE_ROOT: run.root,
    },
    argv,
    stopSignal: 'SIGTERM',
    stopTimeoutSeconds: grace,
    workdir: at('/opt/runctl/work/code'),
  });
}

describe('agent: training in a docker image', () => {
  it('logs in to ECR through stdin, pulls, runs dockerRunArgv with the GPUs nvidia-smi lists, and reports success with checkpoints and outputs', async () => {
    const docker = fakeDocker({ gpu: true });
    const env = { FIXTURE_MODE: 'periodic', FIXTURE_SECONDS: '1', FIXTURE_CUSTOM: 'two words $(not run)' };
    const argv = ['python3', 'train.py', '--epochs', '2'];

    const run = await world.launch({
      env,
      argv,
      config: { docker: dockerConfig, checkpoint: { intervalSeconds: 5, graceSeconds: 2 } },
      instanceEnv: docker.env,
    });
    const outcome = await run.outcome;

    expect(outcome).toMatchObject({ kind: 'success', output: { exitCode: 0 } });
    const calls = docker.calls();
    expect(calls[0]).toEqual(['login', '--username', 'AWS', '--password-stdin', REGISTRY]);
    const password = readFileSync(join(docker.dir, 'login-stdin'), 'utf8');
    expect(password.length).toBeGreaterThan(0);
    for (const call of calls) expect(call.join(' ')).not.toContain(password.trim());
    expect(calls[1]).toEqual(['pull', '--quiet', IMAGE]);
    const runCall = calls.find((c) => c[0] === 'run');
    expect(['docker', ...(runCall ?? [])]).toEqual(expectedRun(run, 2, argv, env, 'all'));
    expect(runCall).toEqual(expect.arrayContaining(['--init', '--gpus', 'all', '-v', `${run.root}/mnt/dataset:${run.root}/mnt/dataset:ro`]));
    // The script saw the environment only through -e, with the RUNCTL_* contract and the user's value intact.
    const received = JSON.parse(readFileSync(join(run.root, 'opt/runctl/output/received.json'), 'utf8'));
    expect(received).toMatchObject({ argv: ['--epochs', '2'], runId: run.runId, attempt: '1', custom: 'two words $(not run)' });
    expect(await world.keys(`runs/${run.runId}/outputs/`)).toContain(`runs/${run.runId}/outputs/_manifest.json`);
    expect(await world.text(`runs/${run.runId}/checkpoints/latest.json`)).toBeDefined();
    const log = await world.text(`runs/${run.runId}/logs/attempt-1.log`);
    expect(log).toContain(`training started in container runctl-${run.runId}-1`);
    expect(log).not.toContain(password.trim());
  });

  it('hands the container its secrets by name: the values reach the script through the docker CLI\'s environment, never its argv', async () => {
    const docker = fakeDocker({ gpu: true });
    const moto = inject('motoEndpoint');
    const name = `/runctl/test/secrets/docker-${Date.now()}/hf-token`;
    const value = `hf_${Date.now()}_secret value`;
    const ssm = new SSMClient(localClientConfig(moto));
    await ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: 'SecureString' }));
    ssm.destroy();
    const env = { FIXTURE_MODE: 'periodic', FIXTURE_SECONDS: '1' };
    const argv = ['python3', 'train.py'];

    const run = await world.launch({
      env,
      argv,
      config: { docker: dockerConfig, secrets: { FIXTURE_CUSTOM: `ssm:${name}` }, checkpoint: { intervalSeconds: 5, graceSeconds: 2 } },
      instanceEnv: { ...docker.env, ...secretsEndpoints(moto) },
    });

    expect(await run.outcome).toMatchObject({ kind: 'success' });
    const runCall = docker.calls().find((c) => c[0] === 'run');
    expect(['docker', ...(runCall ?? [])]).toEqual(expectedRun(run, 2, argv, env, 'all', '', ['FIXTURE_CUSTOM']));
    expect(runCall?.join(' ')).not.toContain(value);
    expect(readFileSync(join(run.stateDir, 'docker-argv'), 'utf8')).not.toContain(value);
    // The fixture reports FIXTURE_CUSTOM as it saw it: the secret, read inside the "container".
    expect(JSON.parse(readFileSync(join(run.root, 'opt/runctl/output/received.json'), 'utf8'))).toMatchObject({ custom: value });
    expect(await world.text(`runs/${run.runId}/logs/attempt-1.log`)).not.toContain(value);
  });

  it('delivers the stop signal through docker kill, then uploads the checkpoint the script saved', async () => {
    const docker = fakeDocker();
    const run = await world.launch({
      env: { FIXTURE_MODE: 'save-on-term' },
      config: { docker: { ...dockerConfig, mounts: [] }, checkpoint: { intervalSeconds: 60, graceSeconds: 10 } },
      instanceEnv: docker.env,
    });
    await waitFor(() => existsSync(join(run.root, 'opt/runctl/output/received.json')), 'the training to start');

    await world.runOnInstance(run.root, checkpointNowCommand(run.runId, 1));
    const outcome = await run.outcome;

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Spot.Interrupted' });
    const kills = docker.calls().filter((c) => c[0] === 'kill');
    // No nvidia-smi here, as on a CPU type: docker.gpus "auto" passes no --gpus.
    expect(docker.calls().find((c) => c[0] === 'run')).not.toContain('--gpus');
    expect(kills[0]).toEqual(dockerKillArgv(`runctl-${run.runId}-1`, 'SIGTERM').slice(1));
    const cause = z.object({ checkpoint: z.object({ uri: z.string() }) }).parse(outcome.kind === 'failure' ? outcome.cause : undefined);
    const key = cause.checkpoint.uri.replace(`s3://${BUCKET}/`, '');
    expect(await world.text(`${key}final.ckpt`)).toMatch(/"step": \d+/);
  });

  it('waits for a slow container removal without calling it an overrun grace period (docker run --rm on vfs)', async () => {
    const docker = fakeDocker();
    const run = await world.launch({
      env: { FIXTURE_MODE: 'save-on-term' },
      config: { docker: { ...dockerConfig, mounts: [] }, checkpoint: { intervalSeconds: 60, graceSeconds: 3 } },
      // The container has exited; its removal outlasts the 3 s grace period.
      instanceEnv: { ...docker.env, FAKE_DOCKER_REMOVE_SECONDS: '6' },
    });
    await waitFor(() => existsSync(join(run.root, 'opt/runctl/output/received.json')), 'the training to start');

    await world.runOnInstance(run.root, checkpointNowCommand(run.runId, 1));
    const outcome = await run.outcome;

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Spot.Interrupted' });
    const log = readFileSync(join(run.stateDir, 'upload/logs/attempt-1.log'), 'utf8');
    expect(log).not.toContain('did not stop within the grace period');
    // Only the stop signal: no SIGKILL through docker kill.
    expect(docker.calls().filter((c) => c[0] === 'kill')).toEqual([dockerKillArgv(`runctl-${run.runId}-1`, 'SIGTERM').slice(1)]);
    const cause = z.object({ checkpoint: z.object({ uri: z.string() }) }).parse(outcome.kind === 'failure' ? outcome.cause : undefined);
    expect(await world.text(`${cause.checkpoint.uri.replace(`s3://${BUCKET}/`, '')}final.ckpt`)).toMatch(/"step": \d+/);
  });

  it('keeps sending heartbeats while a long setup (here an image pull) runs, so the task does not time out', async () => {
    const docker = fakeDocker();
    const run = await world.launch({
      env: { FIXTURE_MODE: 'periodic' },
      config: { docker: dockerConfig, heartbeatSeconds: 1 },
      instanceEnv: { ...docker.env, FAKE_DOCKER_PULL_SECONDS: '6' },
    });
    // Heartbeats counted when the container starts were all sent during the setup.
    await waitFor(() => docker.calls().some((c) => c[0] === 'run'), 'the container to start');
    expect(run.heartbeats()).toBeGreaterThanOrEqual(2);
    expect(await run.outcome).toMatchObject({ kind: 'success' });
  });

  it('fails the prechecks when the image cannot be pulled, without starting anything', async () => {
    const docker = fakeDocker();
    const run = await world.launch({
      config: { docker: dockerConfig },
      instanceEnv: { ...docker.env, FAKE_DOCKER_PULL_FAILS: '1' },
    });
    const outcome = await run.outcome;

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Run.PrecheckFailed', cause: { reason: expect.stringContaining(`docker pull ${IMAGE} failed`) } });
    expect(docker.calls().some((c) => c[0] === 'run')).toBe(false);
  });
});
