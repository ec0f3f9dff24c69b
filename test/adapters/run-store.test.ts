import { randomUUID } from 'node:crypto';
import {
  DynamoDBClient,
  ProvisionedThroughputExceededException,
} from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { DynamoRunStore, runsDocumentClient } from '../../shared/adapters/dynamo-run-store';
import type { Attempt, RunRecord } from '../../shared/domain/run-record';
import { parseRunSpec } from '../../shared/domain/run-spec';
import type { RunStatus } from '../../shared/domain/run-status';
import {
  AwsCallFailedError,
  ConflictError,
  RunInvalidError,
  StatusConflictError,
  ThrottledError,
} from '../../shared/errors';
import type { RunStore } from '../../shared/ports/run-store';
import { createRunsTable, dynamoClient, localClientConfig } from '../support/aws-clients';
import { startDynalite } from '../support/dynalite';

const ALICE = 'arn:aws:iam::123456789012:user/alice';
const BOB = 'arn:aws:iam::123456789012:user/bob';
const NOW = new Date('2026-03-01T12:00:00.000Z');

const spec = parseRunSpec({
  name: 'resnet50',
  code: { bundle: 's3://runctl-code/bundles/abc.tar.gz', entrypoint: 'train.py' },
  instance: { types: 'g5.xlarge,g6.xlarge' },
  hyperparameters: { epochs: 50, lr: 0.001 },
  data: ['s3://datasets/imagenet/:/data'],
});

/** createdAt `minute` minutes after a fixed origin, so listings have a known order. */
function at(minute: number): string {
  return new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
}

function runRecord(overrides: Partial<RunRecord> = {}): RunRecord {
  const createdAt = overrides.createdAt ?? at(0);
  return {
    runId: `run-${randomUUID()}`,
    owner: ALICE,
    spec,
    specHash: 'sha256:0f3c',
    status: 'PENDING',
    createdAt,
    updatedAt: createdAt,
    attempts: [],
    costUsd: 0,
    interruptions: 0,
    userFailures: 0,
    ...overrides,
  };
}

function attempt(number: number, overrides: Partial<Attempt> = {}): Attempt {
  return { attempt: number, spot: true, startedAt: at(100 + number), instanceType: 'g5.xlarge', ...overrides };
}

async function listAll(list: (nextToken?: string) => Promise<{ items: RunRecord[]; nextToken?: string }>) {
  const pages: string[][] = [];
  let nextToken: string | undefined;
  do {
    const page = await list(nextToken);
    pages.push(page.items.map((r) => r.runId));
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  return pages;
}

interface Backend {
  name: string;
  start(): Promise<{ endpoint: string; close(): Promise<void> }>;
  /**
   * Whether two overlapping conditional writes to one item are applied one after the other, as
   * DynamoDB does. moto's server evaluates the condition and writes without a lock, so two
   * concurrent requests can both pass; the race is then checked on dynalite only.
   */
  serializesWrites: boolean;
}

const backends: Backend[] = [
  { name: 'dynalite', start: startDynalite, serializesWrites: true },
  {
    name: 'moto_server',
    start: async () => ({ endpoint: inject('motoEndpoint'), close: async () => {} }),
    serializesWrites: false,
  },
];

describe.each(backends)('DynamoRunStore on $name', ({ start, serializesWrites }) => {
  let backend: { endpoint: string; close(): Promise<void> };
  let client: DynamoDBClient;
  let store: RunStore;

  beforeAll(async () => {
    backend = await start();
    client = dynamoClient(backend.endpoint);
  });

  afterAll(async () => {
    client.destroy();
    await backend.close();
  });

  // A fresh table per test: listings by status then see only what the test wrote.
  beforeEach(async () => {
    const tableName = `runs-${randomUUID()}`;
    await createRunsTable(client, tableName);
    store = new DynamoRunStore(runsDocumentClient(client), tableName, () => NOW);
  });

  it('reads back exactly the record it created, without the table keys', async () => {
    const record = runRecord({
      status: 'TRAINING',
      statusReason: 'training on g5.xlarge in us-east-1a',
      clientToken: 'tok-1',
      executionArn: 'arn:aws:states:us-east-1:123456789012:execution:train-run:r1',
      attempts: [attempt(1, { instanceId: 'i-0abc', availabilityZone: 'us-east-1a', pricePerHourUsd: 0.3712 })],
      taskToken: 'AAAA-token',
      taskTokenAttempt: 1,
      latestCheckpoint: { uri: 's3://b/runs/r1/checkpoints/step-100/', attempt: 1, createdAt: at(5), step: 100 },
      costUsd: 1.25,
      scheduleId: 'nightly',
      cancelRequested: { at: at(9), force: false },
    });

    await store.create(record);

    expect(await store.get(record.runId)).toEqual(record);
    expect(await store.get('run-that-does-not-exist')).toBeUndefined();
  });

  it('refuses to create a run twice and keeps the first record', async () => {
    const first = runRecord();
    await store.create(first);

    const second = store.create({ ...first, specHash: 'sha256:other' });

    await expect(second).rejects.toBeInstanceOf(ConflictError);
    await expect(second).rejects.toThrow(`Run ${first.runId} already exists`);
    expect(await store.get(first.runId)).toEqual(first);
  });

  it("lists an owner's runs newest first across pages, and no one else's", async () => {
    const minutes = [3, 0, 6, 1, 5, 2, 4];
    const alice = minutes.map((m) => runRecord({ runId: `alice-${m}`, createdAt: at(m) }));
    const bob = [runRecord({ runId: 'bob-0', owner: BOB, createdAt: at(2) }), runRecord({ runId: 'bob-1', owner: BOB, createdAt: at(7) })];
    for (const record of [...alice, ...bob]) await store.create(record);

    const pages = await listAll((nextToken) => store.listByOwner(ALICE, { limit: 3, nextToken }));

    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages.every((p) => p.length <= 3)).toBe(true);
    expect(pages.flat()).toEqual(['alice-6', 'alice-5', 'alice-4', 'alice-3', 'alice-2', 'alice-1', 'alice-0']);
    expect((await store.listByOwner(BOB)).items.map((r) => r.runId)).toEqual(['bob-1', 'bob-0']);
  });

  it("lists an owner's runs in one status", async () => {
    const records: [string, RunStatus, number, string][] = [
      ['t-old', 'TRAINING', 1, ALICE],
      ['p', 'PENDING', 2, ALICE],
      ['t-new', 'TRAINING', 3, ALICE],
      ['t-bob', 'TRAINING', 4, BOB],
    ];
    for (const [runId, status, minute, owner] of records) {
      await store.create(runRecord({ runId, status, createdAt: at(minute), owner }));
    }

    const training = await store.listByOwner(ALICE, { status: 'TRAINING' });

    expect(training.items.map((r) => r.runId)).toEqual(['t-new', 't-old']);
    expect(training.nextToken).toBeUndefined();
    expect((await store.listByOwner(ALICE, { status: 'SUCCEEDED' })).items).toEqual([]);
  });

  it('lists every owner’s runs in a status, oldest first, across pages', async () => {
    await store.create(runRecord({ runId: 'a-2', status: 'TRAINING', createdAt: at(2) }));
    await store.create(runRecord({ runId: 'b-1', status: 'TRAINING', createdAt: at(1), owner: BOB }));
    await store.create(runRecord({ runId: 'a-3', status: 'TRAINING', createdAt: at(3) }));
    await store.create(runRecord({ runId: 'a-0', status: 'PENDING', createdAt: at(0) }));

    const pages = await listAll((nextToken) => store.listByStatus('TRAINING', { limit: 2, nextToken }));

    expect(pages.flat()).toEqual(['b-1', 'a-2', 'a-3']);
    expect(pages[0]).toEqual(['b-1', 'a-2']);
  });

  it('moves a run to a new status, patches it and moves it between the status listings', async () => {
    const record = runRecord({ status: 'PENDING', statusReason: 'accepted' });
    await store.create(record);
    const executionArn = 'arn:aws:states:us-east-1:123456789012:execution:train-run:x';

    const moved = await store.transition(record.runId, 'PENDING', 'VALIDATING', { executionArn, costUsd: 0.5 });

    expect(moved).toEqual({
      ...record,
      status: 'VALIDATING',
      statusReason: undefined,
      executionArn,
      costUsd: 0.5,
      updatedAt: NOW.toISOString(),
      phases: [{ status: 'VALIDATING', at: NOW.toISOString() }],
    });
    expect(await store.get(record.runId)).toEqual(moved);
    expect((await store.listByStatus('PENDING')).items).toEqual([]);
    expect((await store.listByStatus('VALIDATING')).items.map((r) => r.runId)).toEqual([record.runId]);
    expect((await store.listByOwner(ALICE, { status: 'PENDING' })).items).toEqual([]);
    expect((await store.listByOwner(ALICE, { status: 'VALIDATING' })).items.map((r) => r.runId)).toEqual([record.runId]);

    const next = await store.transition(record.runId, ['PENDING', 'VALIDATING'], 'PROVISIONING', {
      statusReason: 'asking EC2 for g5.xlarge',
    });
    expect(next.status).toBe('PROVISIONING');
    expect(next.statusReason).toBe('asking EC2 for g5.xlarge');
    // The history keeps every phase entered, in order, for the dashboard's timeline.
    expect(next.phases?.map((p) => p.status)).toEqual(['VALIDATING', 'PROVISIONING']);
    expect((await store.get(record.runId))?.phases).toEqual(next.phases);
  });

  it('refuses a transition from a status the run is not in, naming both', async () => {
    const record = runRecord({ status: 'PROVISIONING' });
    await store.create(record);

    const error = await store.transition(record.runId, 'TRAINING', 'CHECKPOINTING').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StatusConflictError);
    expect(error).toMatchObject({ name: 'Run.StatusConflict', cause: { name: 'ConditionalCheckFailedException' } });
    const message = error instanceof Error ? error.message : '';
    expect(message).toContain(record.runId);
    expect(message).toContain('PROVISIONING');
    expect(message).toContain('TRAINING');
    expect((await store.get(record.runId))?.status).toBe('PROVISIONING');
  });

  it('refuses an illegal transition out of a terminal status without writing', async () => {
    const record = runRecord({ status: 'SUCCEEDED' });
    await store.create(record);

    await expect(store.transition(record.runId, 'SUCCEEDED', 'TRAINING')).rejects.toThrow(StatusConflictError);
    await expect(store.transition(record.runId, 'SUCCEEDED', 'TRAINING')).rejects.toThrow(/not allowed/);
    expect(await store.get(record.runId)).toEqual(record);
  });

  // Only where the backend serializes conditional writes, as DynamoDB does (see Backend).
  if (serializesWrites) {
    it('lets exactly one of two concurrent transitions from the same status win', async () => {
      const record = runRecord({ status: 'TRAINING' });
      await store.create(record);

      const results = await Promise.allSettled([
        store.transition(record.runId, 'TRAINING', 'CHECKPOINTING'),
        store.transition(record.runId, 'TRAINING', 'FINALIZING'),
      ]);

      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]).toBeInstanceOf(StatusConflictError);
      expect((await store.get(record.runId))?.status).toBe(won[0]?.status);
    });
  }

  it('appends each attempt once, even when the append is retried', async () => {
    const record = runRecord();
    await store.create(record);
    const first = attempt(1);

    await store.appendAttempt(record.runId, first);
    await store.appendAttempt(record.runId, { ...first, startedAt: at(999) });
    await store.appendAttempt(record.runId, attempt(2));

    expect((await store.get(record.runId))?.attempts).toEqual([first, attempt(2)]);
    await expect(store.appendAttempt(record.runId, attempt(4))).rejects.toBeInstanceOf(ConflictError);
  });

  it('updates the newest attempt and refuses to rewrite a superseded one', async () => {
    const record = runRecord({ attempts: [attempt(1)] });
    await store.create(record);
    await store.appendAttempt(record.runId, attempt(2));

    await store.updateAttempt(record.runId, 2, { endedAt: at(200), endReason: 'SPOT_INTERRUPTED', instanceId: 'i-0def' });

    const attempts = (await store.get(record.runId))?.attempts;
    expect(attempts).toEqual([attempt(1), attempt(2, { endedAt: at(200), endReason: 'SPOT_INTERRUPTED', instanceId: 'i-0def' })]);
    await expect(store.updateAttempt(record.runId, 1, { endedAt: at(300) })).rejects.toBeInstanceOf(ConflictError);
    expect((await store.get(record.runId))?.attempts[0]).toEqual(attempt(1));
  });

  it("updates one node of the newest attempt, beside the other nodes' own writes, and refuses a rank or attempt it does not have", async () => {
    const node = (rank: number) => ({
      rank,
      instanceId: `i-0node${rank}`,
      instanceType: 'c6i.xlarge',
      availabilityZone: 'us-east-1a',
      spot: true,
      launchedForAttempt: 1,
      launchedAt: at(1),
    });
    const record = runRecord({ attempts: [attempt(1, { nodes: [node(0), node(1)] })] });
    await store.create(record);

    // Two nodes reporting at once: neither write overwrites the other's.
    await Promise.all([
      store.updateNode(record.runId, 1, 0, { lastHeartbeatAt: at(5) }),
      store.updateNode(record.runId, 1, 1, { outcome: { kind: 'SUCCEEDED', at: at(6), output: '{}' } }),
    ]);
    const nodes = (await store.get(record.runId))?.attempts[0]?.nodes;
    expect(nodes).toEqual([{ ...node(0), lastHeartbeatAt: at(5) }, { ...node(1), outcome: { kind: 'SUCCEEDED', at: at(6), output: '{}' } }]);

    await expect(store.updateNode(record.runId, 1, 2, { lastHeartbeatAt: at(7) })).rejects.toBeInstanceOf(ConflictError);
    await store.appendAttempt(record.runId, attempt(2, { nodes: [node(0)] }));
    await expect(store.updateNode(record.runId, 1, 0, { lostAt: at(8) })).rejects.toBeInstanceOf(ConflictError);
    expect((await store.get(record.runId))?.attempts[0]?.nodes?.[0]?.lostAt).toBeUndefined();
  });

  it('stores and clears the task token, and a stale clear does nothing', async () => {
    const record = runRecord();
    await store.create(record);
    await store.appendAttempt(record.runId, attempt(1));

    await store.setTaskToken(record.runId, 1, 'token-1');
    expect(await store.get(record.runId)).toMatchObject({ taskToken: 'token-1', taskTokenAttempt: 1 });

    expect(await store.clearTaskToken(record.runId, 'token-from-an-old-attempt')).toBe(false);
    expect((await store.get(record.runId))?.taskToken).toBe('token-1');

    expect(await store.clearTaskToken(record.runId, 'token-1')).toBe(true);
    const cleared = await store.get(record.runId);
    expect(cleared?.taskToken).toBeUndefined();
    expect(cleared?.taskTokenAttempt).toBeUndefined();
    expect(await store.clearTaskToken(record.runId, 'token-1')).toBe(false);

    await expect(store.setTaskToken(record.runId, 2, 'token-2')).rejects.toBeInstanceOf(ConflictError);
  });

  it('stores the replacement wait only while the replacement is being prepared, and clears it once', async () => {
    const replacement = { attempt: 2, instanceId: 'i-0next', instanceType: 'g6.xlarge', availabilityZone: 'us-east-1b', spot: true, launchedAt: at(10) };
    const record = runRecord();
    await store.create(record);
    await store.appendAttempt(record.runId, attempt(1));
    // No replacement recorded yet (or another instance): nothing to wait for.
    expect(await store.awaitReplacement(record.runId, 1, 'i-0next', 'wait-0')).toBe(false);
    await store.updateAttempt(record.runId, 1, { replacement });
    expect(await store.awaitReplacement(record.runId, 1, 'i-0other', 'wait-0')).toBe(false);
    expect((await store.get(record.runId))?.replacementToken).toBeUndefined();

    expect(await store.awaitReplacement(record.runId, 1, 'i-0next', 'wait-1')).toBe(true);
    expect((await store.get(record.runId))?.replacementToken).toBe('wait-1');
    expect(await store.clearReplacementToken(record.runId, 'wait-stale')).toBe(false);
    expect(await store.clearReplacementToken(record.runId, 'wait-1')).toBe(true);
    expect(await store.clearReplacementToken(record.runId, 'wait-1')).toBe(false);
    expect((await store.get(record.runId))?.replacementToken).toBeUndefined();

    // Once the data is copied (or the replacement released) the write is refused: the preparer has answered already.
    await store.updateAttempt(record.runId, 1, { replacement: { ...replacement, readyAt: at(11) } });
    expect(await store.awaitReplacement(record.runId, 1, 'i-0next', 'wait-2')).toBe(true);
    await store.updateAttempt(record.runId, 1, { replacement: { ...replacement, readyAt: at(11), dataReadyAt: at(12) } });
    expect(await store.awaitReplacement(record.runId, 1, 'i-0next', 'wait-3')).toBe(false);
    expect((await store.get(record.runId))?.replacementToken).toBe('wait-2');
    await store.updateAttempt(record.runId, 1, { replacement: { ...replacement, releasedAt: at(13) } });
    expect(await store.awaitReplacement(record.runId, 1, 'i-0next', 'wait-4')).toBe(false);
    // Nor for an attempt that is no longer the newest.
    await store.appendAttempt(record.runId, attempt(2));
    await store.updateAttempt(record.runId, 2, { replacement: { ...replacement, attempt: 3, instanceId: 'i-0third' } });
    expect(await store.awaitReplacement(record.runId, 1, 'i-0next', 'wait-5')).toBe(false);
    expect(await store.awaitReplacement(record.runId, 2, 'i-0third', 'wait-6')).toBe(true);
    expect((await store.get(record.runId))?.replacementToken).toBe('wait-6');
  });

  it('rejects a malformed or foreign nextToken as invalid input', async () => {
    for (const minute of [1, 2, 3]) await store.create(runRecord({ createdAt: at(minute) }));
    const alicePage = await store.listByOwner(ALICE, { limit: 1 });
    expect(alicePage.nextToken).toBeDefined();
    const forged = Buffer.from(JSON.stringify(['not', 'a', 'key'])).toString('base64url');

    for (const nextToken of ['%%%not-base64%%%', forged, alicePage.nextToken]) {
      const list = nextToken === alicePage.nextToken ? store.listByOwner(BOB, { nextToken }) : store.listByOwner(ALICE, { nextToken });
      await expect(list).rejects.toBeInstanceOf(RunInvalidError);
      await expect(list).rejects.toThrow(/nextToken is invalid/);
    }
  });
});

describe('DynamoRunStore error translation', () => {
  const documentClient = runsDocumentClient(new DynamoDBClient(localClientConfig('http://127.0.0.1:9')));
  const mock = mockClient(documentClient);
  const store = new DynamoRunStore(documentClient, 'runs');

  afterAll(() => mock.restore());

  it('turns throttling into ThrottledError and keeps the SDK error as cause', async () => {
    const throttled = new ProvisionedThroughputExceededException({ message: 'Rate of requests exceeds capacity', $metadata: {} });
    mock.reset().on(GetCommand).rejects(throttled);

    const error = await store.get('run-1').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ThrottledError);
    expect(error).toMatchObject({ name: 'Aws.Throttled', cause: throttled });
  });

  it('turns any other failure into AwsCallFailedError with the cause', async () => {
    const denied = Object.assign(new Error('not authorized to perform dynamodb:UpdateItem'), { name: 'AccessDeniedException' });
    mock.reset().on(GetCommand).resolves({ Item: { owner: ALICE } }).on(UpdateCommand).rejects(denied);

    const error = await store.transition('run-1', 'TRAINING', 'CHECKPOINTING').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AwsCallFailedError);
    expect(error).toMatchObject({ name: 'Aws.CallFailed', cause: denied });
  });
});
