import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startLocalServices, type LocalServices } from '../../local/services';

let root: string;
let running: LocalServices | undefined;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'runctl-services-'));
});

afterEach(async () => {
  await running?.close();
  running = undefined;
  await rm(root, { recursive: true, force: true });
});

async function start(persist: boolean): Promise<LocalServices> {
  running = await startLocalServices({ root, persist });
  return running;
}

async function stop(): Promise<void> {
  await running?.close();
  running = undefined;
}

async function write(services: LocalServices): Promise<void> {
  const s3 = new S3Client(services.clientConfig.s3);
  const dynamo = new DynamoDBClient(services.clientConfig.dynamodb);
  await s3.send(
    new PutObjectCommand({ Bucket: services.bucket, Key: 'runs/r-1/checkpoints/latest.json', Body: '{"step":42}' }),
  );
  await dynamo.send(
    new PutItemCommand({ TableName: services.table, Item: { pk: { S: 'RUN#r-1' }, sk: { S: 'RUN' }, status: { S: 'RUNNING' } } }),
  );
  s3.destroy();
  dynamo.destroy();
}

async function read(services: LocalServices): Promise<{ object: string | undefined; status: string | undefined }> {
  const s3 = new S3Client(services.clientConfig.s3);
  const dynamo = new DynamoDBClient(services.clientConfig.dynamodb);
  try {
    const object = await s3
      .send(new GetObjectCommand({ Bucket: services.bucket, Key: 'runs/r-1/checkpoints/latest.json' }))
      .then((output) => output.Body?.transformToString(), () => undefined);
    const item = await dynamo.send(
      new GetItemCommand({ TableName: services.table, Key: { pk: { S: 'RUN#r-1' }, sk: { S: 'RUN' } } }),
    );
    return { object, status: item.Item?.status?.S };
  } finally {
    s3.destroy();
    dynamo.destroy();
  }
}

describe('startLocalServices', () => {
  it('keeps objects and table items across a restart on the same root when persisting', async () => {
    const first = await start(true);
    await write(first);
    await stop();

    const second = await start(true);
    const found = await read(second);

    expect(found).toEqual({ object: '{"step":42}', status: 'RUNNING' });
    expect(second.endpoints.s3).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(second.endpoints.dynamodb).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('leaves persisted data alone when started without persistence on the same root', async () => {
    await write(await start(true));
    await stop();
    const ephemeral = await start(false);
    expect(await read(ephemeral)).toEqual({ object: undefined, status: undefined });
    await stop();

    const persisted = await start(true);

    expect(await read(persisted)).toEqual({ object: '{"step":42}', status: 'RUNNING' });
  });

  it('starts empty again after a restart without persistence, bucket and table recreated', async () => {
    const first = await start(false);
    await write(first);
    expect(await read(first)).toEqual({ object: '{"step":42}', status: 'RUNNING' });
    await stop();

    const scratchLeft = await readdir(join(root, 'tmp'));
    const second = await start(false);

    expect(await read(second)).toEqual({ object: undefined, status: undefined });
    expect(scratchLeft).toEqual([]);
  });
});
