import type { Server } from 'node:http';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { runsTableDefinition } from '../shared/adapters/runs-table';
import { listenLoopback } from './loopback';

/**
 * S3 and DynamoDB for the local backend: s3rver and dynalite, in this process, on free loopback
 * ports, speaking the real wire protocols to the real adapters (only the endpoint changes).
 * With `persist`, everything lives under the root (`<root>/s3`, `<root>/dynamo`), so a restarted
 * control plane finds its runs, checkpoints and logs where it left them.
 */

export const LOCAL_REGION = 'us-east-1';
export const DEFAULT_BUCKET = 'runctl-artifacts';
export const DEFAULT_TABLE = 'runctl-runs';

/** s3rver checks request signatures against this fixed key pair; dynalite accepts any. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface LocalServicesOptions {
  /** Directory holding s3/ and dynamo/ (default `.runctl`). */
  root?: string;
  /** Keep data across restarts (objects under s3/, LevelDB under dynamo/); else memory and a scratch dir removed on close. */
  persist: boolean;
  bucket?: string;
  table?: string;
}

export interface LocalServices {
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  endpoints: { s3: string; dynamodb: string };
  bucket: string;
  table: string;
  /** Ready-made SDK client configurations for the two endpoints. */
  clientConfig: { s3: S3ClientConfig; dynamodb: DynamoDBClientConfig };
  close(): Promise<void>;
}

interface S3rverServer {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: { closeAllConnections(): void };
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverServer;

type DynaliteFactory = (options: Record<string, unknown>) => Server;

// Both emulators are CommonJS and ship no types.
const requireCjs = createRequire(import.meta.url);

// A class and a factory are both functions at run time; the types are their documented APIs.
function isS3rverConstructor(value: unknown): value is S3rverConstructor {
  return typeof value === 'function';
}

function isDynaliteFactory(value: unknown): value is DynaliteFactory {
  return typeof value === 'function';
}

function loadS3rver(): S3rverConstructor {
  const loaded: unknown = requireCjs('s3rver');
  if (!isS3rverConstructor(loaded)) throw new Error('s3rver did not export its server class');
  return loaded;
}

function loadDynalite(): DynaliteFactory {
  const loaded: unknown = requireCjs('dynalite');
  if (!isDynaliteFactory(loaded)) throw new Error('dynalite did not export its server factory');
  return loaded;
}

/** Starts s3rver and dynalite, creates the runs bucket and table when absent. */
export async function startLocalServices(options: LocalServicesOptions): Promise<LocalServices> {
  const root = resolve(options.root ?? '.runctl');
  const bucket = options.bucket ?? DEFAULT_BUCKET;
  const table = options.table ?? DEFAULT_TABLE;
  await mkdir(root, { recursive: true });

  // Without persistence the objects go to a scratch directory removed on close, never to s3/,
  // so an ephemeral start on a root that holds persisted runs cannot wipe them.
  const s3Directory = options.persist ? join(root, 's3') : await makeScratch(root);
  const s3 = await startS3(s3Directory, bucket, options.persist);
  let dynamo: { endpoint: string; close(): Promise<void> };
  try {
    dynamo = await startDynamo(options.persist ? join(root, 'dynamo') : undefined);
  } catch (error) {
    await s3.close();
    throw error;
  }

  const credentials = { ...LOCAL_CREDENTIALS };
  const dynamodbConfig: DynamoDBClientConfig = { endpoint: dynamo.endpoint, region: LOCAL_REGION, credentials };
  const s3Config: S3ClientConfig = {
    endpoint: s3.endpoint,
    region: LOCAL_REGION,
    credentials,
    // s3rver serves buckets by path, not by virtual host.
    forcePathStyle: true,
  };
  const services: LocalServices = {
    region: LOCAL_REGION,
    credentials,
    endpoints: { s3: s3.endpoint, dynamodb: dynamo.endpoint },
    bucket,
    table,
    clientConfig: { s3: s3Config, dynamodb: dynamodbConfig },
    close: async () => {
      await Promise.all([s3.close(), dynamo.close()]);
    },
  };
  try {
    await ensureTable(dynamodbConfig, table);
  } catch (error) {
    await services.close();
    throw error;
  }
  return services;
}

async function startS3(directory: string, bucket: string, persist: boolean) {
  const S3rver = loadS3rver();
  await mkdir(directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    resetOnClose: false,
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      const closing = server.close();
      // Keep-alive sockets of SDK clients would otherwise hold the close open.
      server.httpServer?.closeAllConnections();
      await closing;
      if (!persist) await rm(directory, { recursive: true, force: true });
    },
  };
}

async function makeScratch(root: string): Promise<string> {
  await mkdir(join(root, 'tmp'), { recursive: true });
  return mkdtemp(join(root, 'tmp', 's3-'));
}

async function startDynamo(path: string | undefined) {
  const createDynalite = loadDynalite();
  if (path !== undefined) await mkdir(path, { recursive: true });
  const server = createDynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(path === undefined ? {} : { path }),
  });
  const listener = await listenLoopback(server);
  // dynalite's close also closes its LevelDB store, which releases the lock for the next start.
  return { endpoint: listener.url, close: listener.close };
}

async function ensureTable(config: DynamoDBClientConfig, table: string): Promise<void> {
  const client = new DynamoDBClient(config);
  try {
    await client.send(new DescribeTableCommand({ TableName: table }));
  } catch (error) {
    if (!(error instanceof Error) || error.name !== 'ResourceNotFoundException') throw error;
    await client.send(new CreateTableCommand(runsTableDefinition(table)));
  } finally {
    client.destroy();
  }
}
