import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { S3Artifacts } from '../../shared/adapters/s3-artifacts';
import { freePort } from '../support/global-setup';

interface S3rverServer {
  run(): Promise<unknown>;
  close(): Promise<unknown>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverServer;

function isConstructor(value: unknown): value is S3rverConstructor {
  return typeof value === 'function';
}

interface Emulator {
  endpoint: string;
  /** s3rver only accepts its own fixed key pair; moto accepts any. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  close(): Promise<void>;
}

const clientFor = ({ endpoint, credentials }: Emulator) =>
  new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });

/** s3rver speaks the S3 REST protocol from a temporary directory. */
async function startS3rver(): Promise<Emulator> {
  const loaded: unknown = createRequire(import.meta.url)('s3rver');
  if (!isConstructor(loaded)) throw new Error('s3rver did not export its server class');
  const directory = mkdtempSync(join(tmpdir(), 'runctl-s3rver-'));
  const port = await freePort();
  const server = new loaded({ port, address: '127.0.0.1', silent: true, directory });
  await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    close: async () => {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

const emulators: Array<[string, () => Promise<Emulator>]> = [
  ['s3rver', startS3rver],
  [
    'moto',
    async () => ({ endpoint: inject('motoEndpoint'), credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, close: async () => {} }),
  ],
];

describe.each(emulators)('S3Artifacts on %s', (name, start) => {
  const bucket = `runctl-artifacts-${name}`;
  let s3: S3Client;
  let artifacts: S3Artifacts;
  let close: () => Promise<void>;

  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  const checkpoint = async (runId: string, id: string, attempt: number) => {
    const uri = `s3://${bucket}/runs/${runId}/checkpoints/${id}/`;
    await put(`runs/${runId}/checkpoints/${id}/model.pt`, 'weights');
    await put(`runs/${runId}/checkpoints/${id}/_COMPLETE.json`, JSON.stringify({ uri, attempt, id }));
    return uri;
  };
  const pointTo = (runId: string, uri: string, attempt: number) =>
    put(`runs/${runId}/checkpoints/latest.json`, JSON.stringify({ uri, attempt, seq: 3, step: 300, epoch: 3, createdAt: '2025-01-01T00:00:00Z', files: 1, bytes: 7 }));

  beforeAll(async () => {
    const server = await start();
    close = server.close;
    s3 = clientFor(server);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    artifacts = new S3Artifacts(s3, bucket);
  });
  afterAll(async () => {
    s3?.destroy();
    await close?.();
  });

  it('tells whether an object exists', async () => {
    await put('runs/r-exists/code/bundle.tar.gz', 'tar');
    expect(await artifacts.objectExists(`s3://${bucket}/runs/r-exists/code/bundle.tar.gz`)).toBe(true);
    expect(await artifacts.objectExists(`s3://${bucket}/runs/r-exists/code/missing.tar.gz`)).toBe(false);
  });

  it('has no checkpoint for a run that wrote none', async () => {
    expect(await artifacts.latestCheckpoint('r-none')).toBeUndefined();
    expect(await artifacts.listCheckpoints('r-none')).toEqual([]);
  });

  it('follows latest.json to a complete checkpoint', async () => {
    await checkpoint('r-latest', '0001-000001', 1);
    const uri = await checkpoint('r-latest', '0002-000003', 2);
    await pointTo('r-latest', uri, 2);
    expect(await artifacts.latestCheckpoint('r-latest')).toMatchObject({ id: '0002-000003', uri, attempt: 2, step: 300, epoch: 3, bytes: 7 });
  });

  it('never returns a checkpoint whose _COMPLETE.json is missing', async () => {
    const complete = await checkpoint('r-partial', '0001-000001', 1);
    await put('runs/r-partial/checkpoints/0001-000002/model.pt', 'half');
    await pointTo('r-partial', `s3://${bucket}/runs/r-partial/checkpoints/0001-000002/`, 1);
    const latest = await artifacts.latestCheckpoint('r-partial');
    expect(latest?.uri).toBe(complete);
  });

  it('ignores a pointer outside the run prefix', async () => {
    await checkpoint('r-other', '0001-000001', 1);
    await pointTo('r-foreign', `s3://${bucket}/runs/r-other/checkpoints/0001-000001/`, 1);
    expect(await artifacts.latestCheckpoint('r-foreign')).toBeUndefined();
  });

  it('lists complete checkpoints oldest first', async () => {
    await checkpoint('r-list', '0002-000001', 2);
    await checkpoint('r-list', '0001-000004', 1);
    await put('runs/r-list/checkpoints/0002-000002/model.pt', 'partial');
    const listed = await artifacts.listCheckpoints('r-list');
    expect(listed.map((c) => [c.id, c.attempt])).toEqual([
      ['0001-000004', 1],
      ['0002-000001', 2],
    ]);
  });

  it('reads the outputs manifest', async () => {
    expect(await artifacts.outputsManifest('r-out')).toBeUndefined();
    await put(
      'runs/r-out/outputs/_manifest.json',
      JSON.stringify({ runId: 'r-out', attempt: 2, uri: `s3://${bucket}/runs/r-out/outputs/`, files: [{ key: 'model.onnx', bytes: 10 }], bytes: 10 }),
    );
    expect(await artifacts.outputsManifest('r-out')).toEqual({
      manifestUri: `s3://${bucket}/runs/r-out/outputs/_manifest.json`,
      uri: `s3://${bucket}/runs/r-out/outputs/`,
      attempt: 2,
      files: 1,
      bytes: 10,
    });
  });
});
