import { PutObjectCommand } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentConfigSchema } from '../../shared/agent/agent-config';
import { DATASET_MANIFEST_NAME, datasetManifest } from '../../shared/domain/dataset-manifest';
import {
  AGENT_SCRIPT,
  buildAgentLaunchCommand,
  checkpointNowCommand,
  CONTROL_SCRIPT,
  type ControlTarget,
  PREFETCH_EXIT,
  prefetchCommand,
  runCredentialsPreamble,
  shellQuote,
  stopCommand,
} from '../../shared/agent/commands';
import { AgentWorld, BUCKET } from './agent-harness';

// The prefetch command runs like on EC2: it takes the run's credentials from the agent routes
// (signed with the instance role key the metadata service hands out), not from the environment.
const world = new AgentWorld();
let root: string;
let attempt = 0;

beforeAll(async () => {
  await world.start();
  root = mkdtempSync(join(tmpdir(), 'runctl-prefetch-'));
  const client = world.s3Client;
  for (const [key, body] of [
    ['datasets/mnist/train/a.bin', 'aaaa'],
    ['datasets/mnist/train/b.bin', 'bbbbbb'],
    ['datasets/mnist/labels.csv', 'x,y\n'],
    ['datasets/mnist.tar', 'tarball'],
  ] as const) {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  }
});
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await world.stop();
});

/** A fresh attempt on a fresh instance, so no cached run credentials carry over between tests. */
function nextAttempt(): { control: ControlTarget; instanceId: string } {
  attempt += 1;
  const { instanceId } = world.registerAttempt('run-prefetch', attempt);
  return { control: { endpoint: world.control.url, region: 'us-east-1', runId: 'run-prefetch', attempt }, instanceId };
}

/** The attempt the next `runBash` runs on (none: a plain shell, no metadata service). */
let current: { control?: ControlTarget; instanceId: string } = { instanceId: '' };

/** The prefetch command for a new attempt; `runBash` then runs it on that attempt's instance. */
function prefetch(data: Parameters<typeof prefetchCommand>[0]): string {
  const next = nextAttempt();
  current = next;
  return prefetchCommand(data, next.control);
}

function runBash(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // cwd is the sandbox root, where a canary of an injected command would land.
    const child = spawn('bash', ['-s'], {
      cwd: root,
      env: {
        ...world.instanceEnv(root, current.instanceId === '' ? 'off' : world.imds.endpointFor(current.instanceId)),
        LANG: 'C.UTF-8',
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
  control: { endpoint: 'https://abc123.execute-api.us-east-1.amazonaws.com' },
};

// Each AWS CLI call costs ~0.4 s of CPU; on a loaded 2-core machine a prefetch of three sources takes many seconds.
describe('prefetchCommand', { timeout: 300_000 }, () => {
  it('syncs a prefix and copies an object, printing bytes and seconds for each', async () => {
    const result = await runBash(
      prefetch([
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

  it('checks a copy against the dataset manifest beside it, and fails naming the first file S3 no longer matches', async () => {
    const files = [
      { path: 'images/0.bin', body: 'zero' },
      { path: 'images/1.bin', body: 'one!' },
    ];
    const put = (key: string, body: string) => world.s3Client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
    for (const file of files) await put(`datasets/checked/${file.path}`, file.body);
    await put(`datasets/checked/${DATASET_MANIFEST_NAME}`, JSON.stringify(datasetManifest(files)));

    const intact = await runBash(prefetch([{ source: `s3://${BUCKET}/datasets/checked/`, target: '/data/checked' }]));
    expect(intact.stderr).toBe('');
    expect(intact.code).toBe(0);

    // The object is replaced by bytes of the same size: only the digest can tell.
    await put('datasets/checked/images/1.bin', 'one?');
    const corrupted = await runBash(prefetch([{ source: `s3://${BUCKET}/datasets/checked/`, target: '/data/checked-again' }]));
    expect(corrupted.code).toBe(PREFETCH_EXIT.manifestMismatch);
    expect(corrupted.stderr).toMatch(new RegExp(`runctl prefetch: s3://${BUCKET}/datasets/checked/ does not match its manifest: images/1\\.bin is sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}`));
  });

  it('fails with a distinct exit code and a clear message when a source is missing', async () => {
    const result = await runBash(prefetch([{ source: `s3://${BUCKET}/datasets/nothing-here/`, target: '/data/x' }]));

    expect(result.code).toBe(PREFETCH_EXIT.sourceMissing);
    expect(result.stderr).toContain(`data source s3://${BUCKET}/datasets/nothing-here/ is missing`);
  });

  it('copies a prefix again onto an instance that has it (a retried prefetch): nothing to download, still not missing', async () => {
    const source = `s3://${BUCKET}/datasets/mnist/train/`;
    const first = await runBash(prefetch([{ source, target: '/data/again' }]));
    const second = await runBash(prefetch([{ source, target: '/data/again' }]));

    expect(first.code).toBe(0);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout.trim())).toMatchObject({ source, target: '/data/again', bytes: 10 });
  }, 120_000);

  it('counts a bucket that does not exist as a missing source (the user\'s to fix), not a failed copy', async () => {
    const result = await runBash(prefetch([{ source: 's3://runctl-no-such-bucket/datasets/x/', target: '/data/nb' }]));

    expect(result.code).toBe(PREFETCH_EXIT.sourceMissing);
    expect(result.stderr).toContain('bucket runctl-no-such-bucket does not exist');
  });

  it('fails with another exit code when S3 refuses the credentials', async () => {
    const keys = world.credentials.keys;
    world.credentials.keys = { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'nope' };
    try {
      const result = await runBash(prefetch([{ source: `s3://${BUCKET}/datasets/mnist/`, target: '/data/y' }]));

      expect(result.code).toBe(PREFETCH_EXIT.accessDenied);
      expect(result.stderr).toContain('access denied');
    } finally {
      world.credentials.keys = keys;
    }
  });

  it('uses the run credentials the agent routes vend, never the credentials in its environment', async () => {
    const script = prefetch([{ source: `s3://${BUCKET}/datasets/mnist.tar`, target: '/data/creds/' }]);
    const before = world.credentials.issued.length;
    const result = await runBash(script);

    expect(result.code).toBe(0);
    // One fetch warms the cache while the CLI starts; the CLI makes its own only if it asks first.
    const issued = world.credentials.issued.slice(before);
    expect(issued.length).toBeGreaterThanOrEqual(1);
    expect(issued.length).toBeLessThanOrEqual(2);
    for (const i of issued) expect(i.sessionName).toBe(`run-prefetch-${attempt}`);
    expect(script).toContain('unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN');
  });

  it('gets nothing when the instance does not run that attempt', async () => {
    const script = prefetch([{ source: `s3://${BUCKET}/datasets/mnist.tar`, target: '/data/other/' }]);
    // Another instance (its own metadata, its own key) asks for this attempt's credentials.
    current = { ...current, instanceId: 'i-0someoneelse00000' };
    const result = await runBash(script);

    expect(result.code).toBe(PREFETCH_EXIT.accessDenied);
    expect(result.stderr).toContain('access denied');
    expect(world.credentials.issued.some((i) => i.sessionName === `run-prefetch-${attempt}`)).toBe(false);
  });

  it('keeps hostile source and target text literal', async () => {
    const script = prefetch([{ source: `s3://${BUCKET}/$(touch pwned)'; touch pwned2 '`, target: '/data/z' }]);
    const result = await runBash(script);

    expect(result.code).toBe(PREFETCH_EXIT.sourceMissing);
    expect(existsSync(join(root, 'pwned'))).toBe(false);
    expect(existsSync(join(root, 'pwned2'))).toBe(false);
    // The canary check itself works: the same text unquoted does create it.
    await runBash(`true $(touch canary-check)`);
    expect(existsSync(join(root, 'canary-check'))).toBe(true);
    expect(() => prefetch([{ source: 'https://example.com/x', target: '/data' }])).toThrow(/s3:\/\//);
    expect(() => prefetch([{ source: 's3://b/x', target: '/data/../etc' }])).toThrow(/absolute path/);
  });
});

describe('buildAgentLaunchCommand', () => {
  it('embeds the agent script and the parsed config as base64', () => {
    const command = buildAgentLaunchCommand(config);

    const encoded = [...command.matchAll(/printf '%s' '([A-Za-z0-9+/=]+)' \| base64 -d/g)].map((m) => m[1] ?? '');
    expect(encoded).toHaveLength(3);
    expect(Buffer.from(encoded[0] ?? '', 'base64').toString('utf8')).toBe(CONTROL_SCRIPT);
    expect(Buffer.from(encoded[1] ?? '', 'base64').toString('utf8')).toBe(AGENT_SCRIPT);
    const shipped = AgentConfigSchema.parse(JSON.parse(Buffer.from(encoded[2] ?? '', 'base64').toString('utf8')));
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

describe('control.py credentials', { timeout: 120_000 }, () => {
  it('fetches into its cache while the first AWS CLI starts, and many fetching at once all succeed, leaving one whole cache', async () => {
    const { control, instanceId } = nextAttempt();
    current = { control, instanceId };
    const dir = mkdtempSync(join(root, 'control-'));
    writeFileSync(join(dir, 'control.py'), CONTROL_SCRIPT);
    const cache = join(dir, 'cache.json');
    // Each writer holds its written file a second before renaming it over the cache, so the eight
    // writes overlap for certain: writers sharing one temporary name would move each other's file.
    writeFileSync(
      join(dir, 'slow-rename.py'),
      ['import os, runpy, sys, time', 'rename = os.replace', 'os.replace = lambda a, b: (time.sleep(1), rename(a, b))', 'sys.argv = sys.argv[1:]', "runpy.run_path(sys.argv[0], run_name='__main__')", ''].join('\n'),
    );
    const fetch = `python3 ${dir}/slow-rename.py ${dir}/control.py --endpoint ${control.endpoint} --region us-east-1 --run-id ${control.runId} --attempt ${control.attempt} --cache ${cache} credentials`;
    // Eight at once, as the CLI, the agent and a command's warm-up may be: each writes the cache whole.
    const results = await runBash(`for i in 1 2 3 4 5 6 7 8; do ${fetch} > ${dir}/out-$i 2>&1 & done; wait; cat ${dir}/out-*`);
    expect(results.code).toBe(0);
    const printed = results.stdout.trim().split('\n').map((l) => JSON.parse(l) as { AccessKeyId: string });
    expect(printed).toHaveLength(8);
    expect(JSON.parse(readFileSync(cache, 'utf8'))).toMatchObject({ Version: 1, AccessKeyId: expect.any(String) });
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('the credentials preamble warms the cache in the background: the run credentials are issued before any AWS CLI call', async () => {
    const { control, instanceId } = nextAttempt();
    current = { control, instanceId };
    const before = world.credentials.issued.length;
    const result = await runBash(
      [...runCredentialsPreamble(control), `for i in $(seq 100); do [ -s "$ctl/credentials-${control.runId}-${control.attempt}.json" ] && break; sleep 0.1; done`, `cat "$ctl/credentials-${control.runId}-${control.attempt}.json"`].join('\n'),
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ Version: 1 });
    expect(world.credentials.issued.slice(before).map((i) => i.sessionName)).toEqual([`${control.runId}-${control.attempt}`]);
  });
});
