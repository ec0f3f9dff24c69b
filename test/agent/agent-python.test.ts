import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalServices, type LocalServices } from '../../local/services';
import { AGENT_SCRIPT } from '../../shared/agent/commands';

/** The agent's Python helper, as agent.sh writes it on the instance. */
const dir = mkdtempSync(join(tmpdir(), 'runctl-agent-py-'));
const helper = join(dir, 'agent.py');
const start = AGENT_SCRIPT.indexOf("<<'PY'\n") + "<<'PY'\n".length;
writeFileSync(helper, AGENT_SCRIPT.slice(start, AGENT_SCRIPT.indexOf('\nPY\n', start) + 1));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const py = (args: string[], input = '') => execFileSync('python3', [helper, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

describe("the agent's Python helper", () => {
  it('upload-progress keeps the newest figures of the AWS CLI transfer progress and passes other lines on', () => {
    const out = join(dir, 'progress.json');
    // What `aws s3 cp --recursive` prints (its \r turned into newlines by the agent).
    const transcript = ['Completed 256.0 KiB/~1.9 GiB (1.2 MiB/s) with ~3 file(s) remaining', 'Completed 1.2 GiB/2.0 GiB (98.0 MiB/s) with 1 file(s) remaining', ''].join('\n');
    py(['upload-progress', out], transcript.split('\n')[0] ?? '');
    // "~": the CLI is still listing files, so the total is a lower bound.
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ bytes: 256 * 1024, totalBytes: Math.trunc(1.9 * 2 ** 30) });
    py(['upload-progress', out], transcript);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ bytes: Math.trunc(1.2 * 2 ** 30), totalBytes: 2 * 2 ** 30 });
  });

  it('upload-progress writes nothing for output without progress, passes errors on and drops per-file lines', () => {
    const out = join(dir, 'none.json');
    const result = spawnSync('python3', [helper, 'upload-progress', out], {
      input: 'upload: ./a to s3://b/a\nupload failed: ./c to s3://b/c An error occurred (AccessDenied)\n',
      encoding: 'utf8',
    });
    expect(() => readFileSync(out, 'utf8')).toThrow();
    expect(result.stderr).toBe('upload failed: ./c to s3://b/c An error occurred (AccessDenied)\n');
  });

  it('request passes a json@ field as a JSON value, and skips it when the file is missing', () => {
    const body = join(dir, 'body.json');
    writeFileSync(join(dir, 'upload.json'), JSON.stringify({ bytes: 5, totalBytes: 10 }));
    py(['request', body, `upload=json@${join(dir, 'upload.json')}`, 'error=Spot.Interrupted', `gone=json@${join(dir, 'missing.json')}`]);
    expect(JSON.parse(readFileSync(body, 'utf8'))).toEqual({ upload: { bytes: 5, totalBytes: 10 }, error: 'Spot.Interrupted' });
  });
});

describe("the agent's direct transfers (signed requests from the helper, no AWS CLI start-up)", () => {
  let services: LocalServices;
  let s3: S3Client;
  const config = join(dir, 'config.json');
  const env = () => ({
    ...process.env,
    AWS_ENDPOINT_URL_S3: services.endpoints.s3,
    AWS_ACCESS_KEY_ID: services.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: services.credentials.secretAccessKey,
    RUNCTL_IMDS_ENDPOINT: 'off',
  });
  // Asynchronous: s3rver answers from this process, so a synchronous spawn would wait on itself.
  const run = (args: string[], extraEnv: Record<string, string> = {}) =>
    new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn('python3', [helper, ...args], { env: { ...env(), ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('close', (status) => resolve({ status, stderr }));
    });
  const text = async (key: string) =>
    (await s3.send(new GetObjectCommand({ Bucket: services.bucket, Key: key }))).Body?.transformToString();

  beforeAll(async () => {
    services = await startLocalServices({ root: mkdtempSync(join(dir, 'services-')), persist: false });
    s3 = new S3Client(services.clientConfig.s3);
    writeFileSync(config, JSON.stringify({ region: services.region, bucket: services.bucket, runPrefix: 'runs/r-1', attempt: 1 }));
  });
  afterAll(async () => {
    s3.destroy();
    await services.close();
  });

  function checkpointDir(): string {
    const root = mkdtempSync(join(dir, 'ckpt-'));
    mkdirSync(join(root, 'shards'));
    writeFileSync(join(root, 'model.pt'), 'weights'.repeat(1000));
    writeFileSync(join(root, 'shards', 'rank-0 (copy).bin'), 'shard');
    return root;
  }

  it('put-tree uploads every file under its relative path and records the progress', async () => {
    const root = checkpointDir();
    const progress = join(dir, 'put-progress.json');
    const result = await run(['put-tree', config, root, `s3://${services.bucket}/runs/r-1/checkpoints/0001-000001/`, progress]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(await text('runs/r-1/checkpoints/0001-000001/model.pt')).toBe('weights'.repeat(1000));
    expect(await text('runs/r-1/checkpoints/0001-000001/shards/rank-0 (copy).bin')).toBe('shard');
    expect(JSON.parse(readFileSync(progress, 'utf8'))).toEqual({ bytes: 7005, totalBytes: 7005 });
  });

  it('put-tree sends nothing and exits 3 when a file is over the direct limit (the AWS CLI takes it)', async () => {
    const root = checkpointDir();
    const result = await run(['put-tree', config, root, `s3://${services.bucket}/runs/r-1/checkpoints/0001-000002/`, ''], {
      RUNCTL_AGENT_DIRECT_MAX_BYTES: '1000',
    });
    expect(result.status).toBe(3);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: services.bucket, Prefix: 'runs/r-1/checkpoints/0001-000002/' }));
    expect(listed.KeyCount ?? 0).toBe(0);
  });

  it('get-checkpoint restores exactly the files _COMPLETE.json lists, and refuses a path outside the checkpoint', async () => {
    const root = checkpointDir();
    const prefix = `s3://${services.bucket}/runs/r-1/checkpoints/0001-000003/`;
    expect((await run(['put-tree', config, root, prefix, ''])).status).toBe(0);
    const state = mkdtempSync(join(dir, 'state-'));
    const complete = join(state, 'complete.json');
    py(['complete', root, '1', '3', prefix, complete, join(state, 'latest.json')]);
    expect(JSON.parse(readFileSync(complete, 'utf8')).paths).toEqual([
      { key: 'model.pt', bytes: 7000 },
      { key: 'shards/rank-0 (copy).bin', bytes: 5 },
    ]);
    await s3.send(new PutObjectCommand({ Bucket: services.bucket, Key: 'runs/r-1/checkpoints/0001-000003/_COMPLETE.json', Body: readFileSync(complete) }));
    const restored = mkdtempSync(join(dir, 'restored-'));
    const result = await run(['get-checkpoint', config, prefix, restored]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(readFileSync(join(restored, 'model.pt'), 'utf8')).toBe('weights'.repeat(1000));
    expect(readFileSync(join(restored, 'shards', 'rank-0 (copy).bin'), 'utf8')).toBe('shard');

    const marker = JSON.stringify({ id: '0001-000004', paths: [{ key: '../../escaped', bytes: 1 }] });
    await s3.send(new PutObjectCommand({ Bucket: services.bucket, Key: 'runs/r-1/checkpoints/0001-000004/_COMPLETE.json', Body: marker }));
    const refused = await run(['get-checkpoint', config, `s3://${services.bucket}/runs/r-1/checkpoints/0001-000004/`, mkdtempSync(join(dir, 'r2-'))]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("lists '../../escaped', outside the checkpoint");
  });

  it('get-checkpoint exits 3 for a marker that lists no files, written before markers did (the AWS CLI restores it)', async () => {
    await s3.send(new PutObjectCommand({ Bucket: services.bucket, Key: 'runs/r-1/checkpoints/0001-000005/_COMPLETE.json', Body: '{"id":"0001-000005"}' }));
    expect((await run(['get-checkpoint', config, `s3://${services.bucket}/runs/r-1/checkpoints/0001-000005/`, mkdtempSync(join(dir, 'r3-'))])).status).toBe(3);
  });

  it('get fetches one object, and exits 4 for a missing one only when it is optional', async () => {
    const dest = join(dir, 'got', 'model.pt');
    expect((await run(['get', config, `s3://${services.bucket}/runs/r-1/checkpoints/0001-000001/model.pt`, dest])).status).toBe(0);
    expect(readFileSync(dest, 'utf8')).toBe('weights'.repeat(1000));
    const missing = `s3://${services.bucket}/runs/r-1/metrics.jsonl`;
    expect((await run(['get', config, missing, join(dir, 'm.jsonl'), '--optional'])).status).toBe(4);
    const required = await run(['get', config, missing, join(dir, 'm.jsonl')]);
    expect(required.status).toBe(1);
    expect(required.stderr).toContain(`${missing} does not exist`);
  });

  it("reads the run's credentials from control.py's cache while they are fresh, and runs the process once they are not", async () => {
    const cache = join(dir, 'credentials-cache.json');
    const marker = join(dir, 'process-ran');
    // The credential process stands in for control.py: it records that it ran and prints the credentials.
    const processScript = join(dir, 'credential-process.sh');
    const printed = JSON.stringify({ Version: 1, AccessKeyId: services.credentials.accessKeyId, SecretAccessKey: services.credentials.secretAccessKey, Expiration: '2099-01-01T00:00:00Z' });
    writeFileSync(processScript, `#!/bin/sh\ntouch '${marker}'\necho '${printed}'\n`, { mode: 0o755 });
    const awsConfig = join(dir, 'aws-config');
    writeFileSync(awsConfig, `[default]\ncredential_process = ${processScript} --cache ${cache} credentials\n`);
    const noKeys = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_CONFIG_FILE: awsConfig };
    const fetch = () => run(['get', config, `s3://${services.bucket}/runs/r-1/checkpoints/0001-000001/model.pt`, join(dir, 'c.pt')], noKeys);

    const fresh = new Date(Date.now() + 60 * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
    writeFileSync(cache, JSON.stringify({ Version: 1, AccessKeyId: services.credentials.accessKeyId, SecretAccessKey: services.credentials.secretAccessKey, Expiration: fresh }));
    expect((await fetch()).status).toBe(0);
    expect(existsSync(marker)).toBe(false);

    const nearExpiry = new Date(Date.now() + 5 * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
    writeFileSync(cache, JSON.stringify({ Version: 1, AccessKeyId: 'STALE', SecretAccessKey: 'stale', Expiration: nearExpiry }));
    expect((await fetch()).status).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });
});
