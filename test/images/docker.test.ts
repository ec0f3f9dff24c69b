import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildImageCommand,
  buildScriptText,
  type BuildImageOptions,
  dockerKillArgv,
  dockerRunArgv,
  dockerStopArgv,
  ecrLoginCommand,
  ecrRegistryOf,
  pullImageCommand,
  type DockerRunOptions,
} from '../../shared/agent/docker';
import { shellJoin } from '../../shared/domain/shell';

const IMAGE = '123456789012.dkr.ecr.us-east-1.amazonaws.com/runctl/training@sha256:' + 'b'.repeat(64);

const base: DockerRunOptions = {
  image: IMAGE,
  name: 'runctl-r-1-1',
  mounts: [
    { source: '/data', target: '/data', readOnly: false },
    { source: '/mnt/dataset', target: '/mnt/dataset', readOnly: true },
    { source: '/opt/runctl/checkpoints', target: '/opt/runctl/checkpoints', readOnly: false },
    { source: '/opt/runctl/output', target: '/opt/runctl/output', readOnly: false },
  ],
  env: { RUNCTL_RUN_ID: 'r-1', RUNCTL_ATTEMPT: '1', RUNCTL_CHECKPOINT_DIR: '/opt/runctl/checkpoints', RUNCTL_RESUME_FROM: '', RUNCTL_OUTPUT_DIR: '/opt/runctl/output' },
  argv: ['python3', 'train.py', '--epochs', '50'],
  stopSignal: 'SIGTERM',
  stopTimeoutSeconds: 90,
};

/** The values that follow each occurrence of `flag`. */
function valuesOf(argv: readonly string[], flag: string): string[] {
  return argv.flatMap((arg, i) => (arg === flag && argv[i + 1] !== undefined ? [argv[i + 1] ?? ''] : []));
}

describe('dockerRunArgv', () => {
  it('runs with --rm, --init, all GPUs, the stop signal and grace period, then the image and the command', () => {
    const argv = dockerRunArgv(base);

    expect(argv.slice(0, 6)).toEqual(['docker', 'run', '--rm', '--init', '--name', 'runctl-r-1-1']);
    expect(valuesOf(argv, '--gpus')).toEqual(['all']);
    expect(valuesOf(argv, '--stop-signal')).toEqual(['SIGTERM']);
    expect(valuesOf(argv, '--stop-timeout')).toEqual(['90']);
    expect(argv.slice(argv.indexOf(IMAGE))).toEqual([IMAGE, 'python3', 'train.py', '--epochs', '50']);
  });

  it('mounts the data, the dataset volume read-only, the checkpoint and output dirs', () => {
    expect(valuesOf(dockerRunArgv(base), '-v')).toEqual([
      '/data:/data',
      '/mnt/dataset:/mnt/dataset:ro',
      '/opt/runctl/checkpoints:/opt/runctl/checkpoints',
      '/opt/runctl/output:/opt/runctl/output',
    ]);
  });

  it.each([
    ['all', ['all']],
    [2, ['2']],
    ['none', []],
  ] as const)('gpus %s → --gpus %j', (gpus, expected) => {
    expect(valuesOf(dockerRunArgv({ ...base, gpus }), '--gpus')).toEqual(expected);
  });

  it('passes the RUNCTL_* contract over user env of the same name, an empty resume included', () => {
    const env = valuesOf(dockerRunArgv({ ...base, userEnv: { WANDB_PROJECT: 'x', RUNCTL_RUN_ID: 'spoofed' } }), '-e');

    expect(env).toContain('RUNCTL_RUN_ID=r-1');
    expect(env).not.toContain('RUNCTL_RUN_ID=spoofed');
    expect(env).toContain('RUNCTL_RESUME_FROM=');
    expect(env).toContain('WANDB_PROJECT=x');
  });

  it.each([
    ['spaces and quotes', `it's "quoted" and spaced`],
    ['command substitution', '$(touch /tmp/pwned) `id`'],
    ['a newline and a semicolon', 'a\nb; rm -rf /'],
    ['an equals sign', 'k=v=w'],
  ])('keeps an env value with %s as one argv element, also through shell quoting', (_label, value) => {
    const argv = dockerRunArgv({ ...base, userEnv: { HOSTILE: value } });
    expect(valuesOf(argv, '-e')).toContain(`HOSTILE=${value}`);

    // Through bash, as the agent runs it: the shell must hand back the very same argv.
    const echoed = spawnSync('bash', ['-c', `printf '%s\\0' ${shellJoin(argv)}`], { encoding: 'utf8' });
    expect(echoed.stdout.split('\0').slice(0, -1)).toEqual(argv);
  });

  it.each([
    ['a mount path with a colon', { ...base, mounts: [{ source: '/a:b', target: '/data', readOnly: true }] }],
    ['a mount path with a comma', { ...base, mounts: [{ source: '/data', target: '/x,y', readOnly: true }] }],
    ['a bad env name', { ...base, userEnv: { 'BAD-NAME': 'x' } }],
    ['a bad signal', { ...base, stopSignal: 'TERM; reboot' }],
    ['an image with a space', { ...base, image: 'ubuntu latest' }],
    ['an empty command', { ...base, argv: [] }],
  ])('refuses %s', (_label, options) => {
    expect(() => dockerRunArgv(options)).toThrow();
  });
});

describe('signals and ECR', () => {
  it('stops with the grace period and forwards a signal to the container', () => {
    expect(dockerStopArgv('runctl-r-1-1', 90)).toEqual(['docker', 'stop', '--time', '90', 'runctl-r-1-1']);
    expect(dockerKillArgv('runctl-r-1-1', 'SIGUSR1')).toEqual(['docker', 'kill', '--signal', 'SIGUSR1', 'runctl-r-1-1']);
  });

  it('logs in with a password fetched on the instance, piped to stdin', () => {
    expect(ecrLoginCommand('123456789012.dkr.ecr.us-east-1.amazonaws.com', 'us-east-1')).toBe(
      'aws ecr get-login-password --region us-east-1 | docker login --username AWS --password-stdin 123456789012.dkr.ecr.us-east-1.amazonaws.com',
    );
    expect(() => ecrLoginCommand('evil.com; curl x', 'us-east-1')).toThrow();
  });

  it('logs in only for ECR images before pulling', () => {
    expect(ecrRegistryOf(IMAGE)).toBe('123456789012.dkr.ecr.us-east-1.amazonaws.com');
    expect(ecrRegistryOf('pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime')).toBeUndefined();
    expect(pullImageCommand(IMAGE, 'us-east-1')).toContain('docker login');
    expect(pullImageCommand('pytorch/pytorch:2.4.0', 'us-east-1')).not.toContain('docker login');
  });

  it('writes a build script bash accepts', () => {
    const script = buildImageCommand({
      bundleUri: `s3://runctl-runs/bundles/${'a'.repeat(64)}.tar.gz`,
      bundleSha: 'a'.repeat(64),
      runsBucket: 'runctl-runs',
      repositoryUri: '123456789012.dkr.ecr.us-east-1.amazonaws.com/runctl/training',
      registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
      region: 'us-east-1',
      tag: `bundle-${'a'.repeat(64)}`,
    });
    expect(spawnSync('bash', ['-n'], { input: script }).status).toBe(0);
    // Logged in before the build, so `FROM` an image of the same registry pulls with --pull.
    expect(script.indexOf('docker login')).toBeLessThan(script.indexOf('docker build'));
    expect(script).toContain('docker build --pull --force-rm -f');
    expect(() => buildImageCommand({ bundleUri: `s3://b-1/bundles/${'a'.repeat(64)}.tar.gz`, bundleSha: 'a'.repeat(64), runsBucket: 'b-1', repositoryUri: 'r', registry: 'r', region: 'us-east-1', tag: 't', dockerfile: '../etc/passwd' })).toThrow();
  });
});

describe('the image builder command', () => {
  const SHA = 'c'.repeat(64);
  const good: BuildImageOptions = {
    bundleUri: `s3://runctl-runs/bundles/${SHA}.tar.gz`,
    bundleSha: SHA,
    runsBucket: 'runctl-runs',
    repositoryUri: '123456789012.dkr.ecr.us-east-1.amazonaws.com/runctl/training',
    registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
    region: 'us-east-1',
    tag: `bundle-${SHA}`,
  };

  /** Runs the builder text with `aws` and `docker` stubs that fail, in a fresh directory; returns its stderr and the files created there. */
  function runBuilder(script: string): { stderr: string; created: string[] } {
    const dir = mkdtempSync(join(tmpdir(), 'runctl-builder-'));
    try {
      const bin = join(dir, 'bin');
      const cwd = join(dir, 'cwd');
      for (const d of [bin, cwd]) spawnSync('mkdir', ['-p', d]);
      for (const tool of ['aws', 'docker', 'systemctl']) {
        writeFileSync(join(bin, tool), '#!/bin/sh\nexit 1\n');
        chmodSync(join(bin, tool), 0o755);
      }
      const result = spawnSync('bash', ['-s'], { input: script, cwd, env: { PATH: `${bin}:${process.env.PATH ?? ''}`, TMPDIR: dir }, encoding: 'utf8' });
      return { stderr: result.stderr, created: readdirSync(cwd) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('accepts only s3://<runs bucket>/bundles/<sha256>.tar.gz', () => {
    expect(() => buildImageCommand(good)).not.toThrow();
    for (const bundleUri of [
      `s3://runctl-runs/runs/r-victim/outputs/${SHA}.tar.gz`,
      `s3://elsewhere/bundles/${SHA}.tar.gz`,
      `s3://runctl-runs/bundles/${'d'.repeat(64)}.tar.gz`,
      `s3://runctl-runs/bundles/$(touch canary)/${SHA}.tar.gz`,
    ]) {
      expect(() => buildImageCommand({ ...good, bundleUri }), bundleUri).toThrow(/bundle/);
    }
  });

  it('keeps hostile text inert even where no check stops it: $(touch canary) never runs', () => {
    const hostile = '$(touch canary)`touch canary2`"; touch canary3; "';
    const script = buildScriptText({ ...good, bundleUri: `s3://runctl-runs/bundles/${hostile}.tar.gz`, bundleSha: hostile, registry: hostile, region: hostile });
    const { stderr, created } = runBuilder(script);

    expect(created).toEqual([]);
    // The fetch failed (the aws stub exits 1) and the message shows the URI as it was given.
    expect(stderr).toContain(`runctl build: cannot fetch the code bundle s3://runctl-runs/bundles/${hostile}.tar.gz`);
    // The canary check itself works: an unquoted substitution in the same harness does create it.
    expect(runBuilder('touch canary').created).toEqual(['canary']);
    expect(existsSync(join(tmpdir(), 'canary'))).toBe(false);
  });

  it('passes build arguments as single quoted arguments and refuses bad names', () => {
    const options = {
      bundleUri: `s3://runctl-runs/bundles/${'a'.repeat(64)}.tar.gz`,
      bundleSha: 'a'.repeat(64),
      runsBucket: 'runctl-runs',
      repositoryUri: '127.0.0.1:5000/runctl/training',
      registry: '127.0.0.1:5000',
      region: 'us-east-1',
      tag: `bundle-${'a'.repeat(64)}`,
    };
    const script = buildImageCommand({ ...options, buildArgs: { BASE_IMAGE: '127.0.0.1:5000/runctl/base:bookworm', NOTE: 'two words $(touch /tmp/x)' } });

    expect(script).toContain("--build-arg 'BASE_IMAGE=127.0.0.1:5000/runctl/base:bookworm' --build-arg 'NOTE=two words $(touch /tmp/x)'");
    expect(spawnSync('bash', ['-n'], { input: script }).status).toBe(0);
    expect(() => buildImageCommand({ ...options, buildArgs: { 'A;B': 'x' } })).toThrow(/build argument name/);
    expect(() => buildImageCommand({ ...options, buildArgs: { A: 'line\nbreak' } })).toThrow(/build argument A/);
  });
});
