import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentConfigSchema } from '../../shared/agent/agent-config';
import {
  AGENT_SCRIPT,
  buildAgentLaunchCommand,
  checkpointNowCommand,
  PREFETCH_EXIT,
  prefetchCommand,
  shellQuote,
  stopCommand,
} from '../../shared/agent/commands';
import { startS3rver, type S3rverHandle } from '../support/s3rver';

const BUCKET = 'runctl-prefetch-test';
let s3: S3rverHandle;
let root: string;

beforeAll(async () => {
  s3 = await startS3rver([BUCKET]);
  root = mkdtempSync(join(tmpdir(), 'runctl-prefetch-'));
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials });
  for (const [key, body] of [
    ['datasets/mnist/train/a.bin', 'aaaa'],
    ['datasets/mnist/train/b.bin', 'bbbbbb'],
    ['datasets/mnist/labels.csv', 'x,y\n'],
    ['datasets/mnist.tar', 'tarball'],
  ] as const) {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  }
  client.destroy();
});
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await s3.stop();
});

function runBash(script: string, credentials = s3.credentials): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // cwd is the sandbox root, where a canary of an injected command would land.
    const child = spawn('bash', ['-s'], {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        RUNCTL_INSTANCE_ROOT: root,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        AWS_ENDPOINT_URL_S3: s3.endpoint,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(script);
  });
}

const config = {
  runId: 'run-1',
  attempt: 2,
  region: 'us-east-1',
  bucket: 'bucket-b',
  runPrefix: 'runs/run-1',
  codeBundle: 's3://bucket-1/code/abc.tar.gz',
  argv: ['python3', 'train.py'],
  tokenSource: { table: 'runs', runId: 'run-1' },
};

describe('prefetchCommand', () => {
  it('syncs a prefix and copies an object, printing bytes and seconds for each', async () => {
    const result = await runBash(
      prefetchCommand([
        { source: `s3://${BUCKET}/datasets/mnist/train/`, target: '/data/train' },
        { source: `s3://${BUCKET}/datasets/mnist.tar`, target: '/data/archives/' },
        { source: `s3://${BUCKET}/datasets/mnist`, target: '/data/whole' },
      ]),
    );

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { source: `s3://${BUCKET}/datasets/mnist/train/`, target: '/data/train', bytes: 10, seconds: expect.any(Number) },
      { source: `s3://${BUCKET}/datasets/mnist.tar`, target: '/data/archives/', bytes: 7, seconds: expect.any(Number) },
      { source: `s3://${BUCKET}/datasets/mnist`, target: '/data/whole', bytes: 14, seconds: expect.any(Number) },
    ]);
    expect(readFileSync(join(root, 'data/train/b.bin'), 'utf8')).toBe('bbbbbb');
    expect(readFileSync(join(root, 'data/archives/mnist.tar'), 'utf8')).toBe('tarball');
    expect(readFileSync(join(root, 'data/whole/train/a.bin'), 'utf8')).toBe('aaaa');
  }, 120_000); // each real AWS CLI start costs about 1 s of CPU idle, several under load

  it('fails with a distinct exit code and a clear message when a source is missing', async () => {
    const result = await runBash(prefetchCommand([{ source: `s3://${BUCKET}/datasets/nothing-here/`, target: '/data/x' }]));

    expect(result.code).toBe(PREFETCH_EXIT.sourceMissing);
    expect(result.stderr).toContain(`data source s3://${BUCKET}/datasets/nothing-here/ is missing`);
  });

  it('counts a bucket that does not exist as a missing source (the user\'s to fix), not a failed copy', async () => {
    const result = await runBash(prefetchCommand([{ source: 's3://runctl-no-such-bucket/datasets/x/', target: '/data/nb' }]));

    expect(result.code).toBe(PREFETCH_EXIT.sourceMissing);
    expect(result.stderr).toContain('bucket runctl-no-such-bucket does not exist');
  });

  it('fails with another exit code when S3 refuses the credentials', async () => {
    const result = await runBash(prefetchCommand([{ source: `s3://${BUCKET}/datasets/mnist/`, target: '/data/y' }]), {
      accessKeyId: 'NOT-A-KEY',
      secretAccessKey: 'nope',
    });

    expect(result.code).toBe(PREFETCH_EXIT.accessDenied);
    expect(result.stderr).toContain('access denied');
  });

  it('keeps hostile source and target text literal', async () => {
    const script = prefetchCommand([{ source: `s3://${BUCKET}/$(touch pwned)'; touch pwned2 '`, target: '/data/z' }]);
    const result = await runBash(script);

    expect(result.code).toBe(PREFETCH_EXIT.sourceMissing);
    expect(existsSync(join(root, 'pwned'))).toBe(false);
    expect(existsSync(join(root, 'pwned2'))).toBe(false);
    // The canary check itself works: the same text unquoted does create it.
    await runBash(`true $(touch canary-check)`);
    expect(existsSync(join(root, 'canary-check'))).toBe(true);
    expect(() => prefetchCommand([{ source: 'https://example.com/x', target: '/data' }])).toThrow(/s3:\/\//);
    expect(() => prefetchCommand([{ source: 's3://b/x', target: '/data/../etc' }])).toThrow(/absolute path/);
  });
});

describe('buildAgentLaunchCommand', () => {
  it('embeds the agent script and the parsed config as base64', () => {
    const command = buildAgentLaunchCommand(config);

    const encoded = [...command.matchAll(/printf '%s' '([A-Za-z0-9+/=]+)' \| base64 -d/g)].map((m) => m[1] ?? '');
    expect(encoded).toHaveLength(2);
    expect(Buffer.from(encoded[0] ?? '', 'base64').toString('utf8')).toBe(AGENT_SCRIPT);
    const shipped = AgentConfigSchema.parse(JSON.parse(Buffer.from(encoded[1] ?? '', 'base64').toString('utf8')));
    expect(shipped).toMatchObject({ runId: 'run-1', attempt: 2, heartbeatSeconds: 60, imdsPollSeconds: 5 });
    expect(shipped.checkpoint).toEqual({ dir: '/opt/runctl/checkpoints', intervalSeconds: 300, stopSignal: 'TERM', graceSeconds: 90 });
    expect(command).toContain('/opt/runctl/attempts/run-1/2');
    expect(command).toContain('setsid nohup bash');
    expect(AGENT_SCRIPT.startsWith('#!/usr/bin/env bash')).toBe(true);
  });

  it('refuses a config that would put shell text into the command', () => {
    expect(() => buildAgentLaunchCommand({ ...config, runId: 'run-1; rm -rf /' })).toThrow();
    expect(() => checkpointNowCommand('$(reboot)', 1)).toThrow();
    expect(() => stopCommand('run-1', 0)).toThrow(/positive integer/);
    expect(() => buildAgentLaunchCommand({ ...config, env: { 'BAD NAME': 'x' } })).toThrow();
  });

  it('quotes any text for bash', async () => {
    const value = `a'b "c" $(d) \`e\` \\ \n f`;
    const result = await runBash(`printf '%s' ${shellQuote(value)}`);
    expect(result.stdout).toBe(value);
  });
});
