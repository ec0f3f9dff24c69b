import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as createCreateImage } from '../../../functions/api/create-image';
import { createHandler as createCreateVolume } from '../../../functions/api/create-volume';
import { createHandler as createListImages } from '../../../functions/api/list-images';
import { createHandler as createListVolumes } from '../../../functions/api/list-volumes';
import { DynamoCatalog } from '../../../shared/adapters/dynamo-catalog';
import { SfnExecutions } from '../../../shared/adapters/sfn-executions';
import type { VolumeApiDeps } from '../../../shared/composition/volumes';
import type { ImageEntry, VolumeEntry } from '../../../shared/ports/catalog';
import { ALICE, ALICE_OTHER_SESSION, ALICE_OWNER, BOB, BOB_OWNER, apiEvent, lambdaContext } from '../../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../../support/dynalite';

/**
 * The volume and image catalogs are owned: each caller's listings, lookups and builds reach its
 * own entries only. Alice has catalogued a dataset and built a bundle's image; Bob, another
 * owner, asks for the same dataset, snapshot and bundle digest.
 */

const PREWARM = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-prewarm-volume';
const BUILD = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-build-image';
const DATASET = 's3://datasets-bucket/imagenet/';
const SHA = 'a1'.repeat(32);
const BUNDLE = `s3://runctl-runs/bundles/${SHA}.tar.gz`;

const alicesVolume: VolumeEntry = {
  owner: ALICE_OWNER, datasetUri: DATASET, sizeGiB: 500, az: 'us-east-1a', volumeId: 'vol-0aaaaaaaaaaaaaaaa', snapshotId: 'snap-0aaaaaaaaaaaaaaaa',
  volumeType: 'gp3', bytes: 1000, files: 10, createdAt: '2026-11-25T12:00:00.000Z', prewarmId: 'prewarm-alice',
};
const bobsVolume: VolumeEntry = {
  ...alicesVolume, owner: BOB_OWNER, datasetUri: 's3://datasets-bucket/coco/', volumeId: 'vol-0bbbbbbbbbbbbbbbb', snapshotId: 'snap-0bbbbbbbbbbbbbbbb', prewarmId: 'prewarm-bob',
};
const alicesImage: ImageEntry = {
  owner: ALICE_OWNER, bundleSha: SHA, repository: 'runctl/training', imageUri: `123456789012.dkr.ecr.us-east-1.amazonaws.com/runctl/training@sha256:${'5'.repeat(64)}`,
  digest: `sha256:${'5'.repeat(64)}`, tag: `bundle-${SHA}-build-alice`, buildId: 'build-alice', dockerfile: 'Dockerfile', createdAt: '2026-11-25T12:00:00.000Z',
};

const body = (result: { body?: string }): Record<string, unknown> => JSON.parse(result.body ?? '{}');

describe('catalog API handlers: each owner sees and uses only its own entries', () => {
  let dynalite: RunningDynalite;
  let deps: VolumeApiDeps;
  const sfnClient = new SFNClient({ region: 'us-east-1' });
  const sfn = mockClient(sfnClient);
  const started = (arn: string) => sfn.commandCalls(StartExecutionCommand).filter((c) => c.args[0].input.stateMachineArn === arn);
  const inputOf = (arn: string) => JSON.parse(started(arn)[0]?.args[0].input.input ?? '{}');

  const call = {
    'GET /volumes': (caller: string, payload?: unknown) =>
      createListVolumes(() => deps)(apiEvent({ method: 'GET', path: '/volumes', routeKey: 'GET /volumes', caller, query: payload as Record<string, string> | undefined }), lambdaContext()),
    'GET /images': (caller: string, payload?: unknown) =>
      createListImages(() => deps)(apiEvent({ method: 'GET', path: '/images', routeKey: 'GET /images', caller, query: payload as Record<string, string> | undefined }), lambdaContext()),
    'POST /volumes': (caller: string, payload?: unknown) =>
      createCreateVolume(() => deps)(apiEvent({ method: 'POST', path: '/volumes', routeKey: 'POST /volumes', caller, body: payload }), lambdaContext()),
    'POST /images': (caller: string, payload?: unknown) =>
      createCreateImage(() => deps)(apiEvent({ method: 'POST', path: '/images', routeKey: 'POST /images', caller, body: payload }), lambdaContext()),
  } as const;

  beforeAll(async () => {
    dynalite = await startDynalite();
    const table = `catalog-api-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    deps = {
      catalog: new DynamoCatalog(dynamoDocumentClient(dynalite.endpoint), table),
      prewarms: new SfnExecutions(sfnClient, PREWARM),
      builds: new SfnExecutions(sfnClient, BUILD),
      clock: () => new Date(),
      runsBucket: 'runctl-runs',
    };
    await deps.catalog.putVolume(alicesVolume);
    await deps.catalog.putVolume(bobsVolume);
    await deps.catalog.putImage(alicesImage);
  });
  afterAll(async () => dynalite.close());
  beforeEach(() => {
    sfn.reset();
    sfn.on(StartExecutionCommand).callsFake((input: { stateMachineArn?: string; name?: string }) => ({
      executionArn: `${(input.stateMachineArn ?? '').replace(':stateMachine:', ':execution:')}:${input.name}`,
      startDate: new Date(),
    }));
  });

  it.each([
    ['Alice lists her volumes', ALICE, 'GET /volumes', { volumes: [alicesVolume] }],
    ['Alice from another session of her role lists the same', ALICE_OTHER_SESSION, 'GET /volumes', { volumes: [alicesVolume] }],
    ['Bob lists his volumes, not Alice\'s', BOB, 'GET /volumes', { volumes: [bobsVolume] }],
    ['Alice lists her images', ALICE, 'GET /images', { images: [alicesImage] }],
    ['Bob lists no image: Alice\'s build of the bundle is hers', BOB, 'GET /images', { images: [] }],
  ] as const)('%s', async (_label, caller, route, expected) => {
    const result = await call[route](caller);

    expect(result.statusCode).toBe(200);
    expect(body(result)).toEqual(expected);
  });

  it.each([
    ['GET /volumes', { limit: '0' }, 'limit'],
    ['GET /images', { limit: '101' }, 'limit'],
    ['GET /images', { nextToken: 'garbage' }, 'nextToken'],
  ] as const)('%s answers a bad query %j with a 400 naming %s', async (route, query, path) => {
    const result = await call[route](ALICE, query);

    expect(result.statusCode).toBe(400);
    expect(body(result).issues).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
  });

  it("refuses Alice's page token in Bob's listing", async () => {
    await deps.catalog.putVolume({ ...alicesVolume, datasetUri: 's3://datasets-bucket/second/', prewarmId: 'prewarm-alice-2', createdAt: '2026-11-26T12:00:00.000Z' });
    const first = body(await call['GET /volumes'](ALICE, { limit: '1' }));
    expect(first.nextToken).toEqual(expect.any(String));

    const stolen = await call['GET /volumes'](BOB, { limit: '1', nextToken: String(first.nextToken) });

    expect(stolen.statusCode).toBe(400);
    expect(stolen.body).not.toContain(alicesVolume.volumeId);
  });

  it.each([
    ['Alice asks for her bundle: her image, at once', ALICE, {}, 200, { status: 'built', image: alicesImage }],
    ['Bob asks for the same bundle digest: a build of his own, never Alice\'s image', BOB, {}, 202, { status: 'building', bundleSha: SHA }],
    ['Alice asks for it from another Dockerfile: a build', ALICE, { dockerfile: 'docker/Dockerfile.gpu' }, 202, { status: 'building' }],
  ] as const)('POST /images: %s', async (_label, caller, extra, status, expected) => {
    const result = await call['POST /images'](caller, { bundle: BUNDLE, ...extra });

    expect(result.statusCode).toBe(status);
    expect(body(result)).toMatchObject(expected);
    expect(result.body).not.toContain(caller === ALICE ? BOB_OWNER : alicesImage.digest);
    if (status === 202) expect(inputOf(BUILD)).toMatchObject({ owner: caller === ALICE ? ALICE_OWNER : BOB_OWNER, request: { bundle: BUNDLE } });
    else expect(started(BUILD)).toHaveLength(0);
  });

  it('POST /images of the same bundle by two owners names two builds, and the same owner again the same one', async () => {
    const alices = body(await call['POST /images'](ALICE, { bundle: BUNDLE, repository: 'vision' }));
    const alicesAgain = body(await call['POST /images'](ALICE_OTHER_SESSION, { bundle: BUNDLE, repository: 'vision' }));
    const bobs = body(await call['POST /images'](BOB, { bundle: BUNDLE, repository: 'vision' }));

    expect(alicesAgain.buildId).toBe(alices.buildId);
    expect(bobs.buildId).not.toBe(alices.buildId);
    expect(started(BUILD).map((c) => JSON.parse(c.args[0].input.input ?? '{}').owner)).toEqual([ALICE_OWNER, ALICE_OWNER, BOB_OWNER]);
  });

  it.each([
    ["Bob restores Alice's snapshot of her dataset", BOB, { fromSnapshot: alicesVolume.snapshotId }, 400],
    ["Bob restores his own snapshot onto Alice's dataset name", BOB, { fromSnapshot: bobsVolume.snapshotId }, 400],
    ['Alice restores a snapshot no entry of hers records', ALICE, { fromSnapshot: 'snap-0cccccccccccccccc' }, 400],
    ['Alice refreshes her dataset from its own snapshot', ALICE, { fromSnapshot: alicesVolume.snapshotId }, 202],
    ["Bob pre-warms Alice's dataset name afresh: his own prewarm", BOB, {}, 202],
  ] as const)('POST /volumes: %s → %i', async (_label, caller, extra, status) => {
    const result = await call['POST /volumes'](caller, { dataset: DATASET, az: 'us-east-1a', sizeGiB: 500, ...extra });

    expect(result.statusCode).toBe(status);
    if (status === 400) {
      expect(body(result).issues).toEqual([expect.objectContaining({ path: 'fromSnapshot', message: expect.stringContaining('your catalogued volume') })]);
      expect(result.body).not.toMatch(/vol-0aaaaaaaaaaaaaaaa|prewarm-alice/);
      expect(started(PREWARM)).toHaveLength(0);
    } else {
      expect(inputOf(PREWARM)).toEqual({ owner: caller === ALICE ? ALICE_OWNER : BOB_OWNER, request: expect.objectContaining({ dataset: DATASET, ...extra }) });
    }
  });
});
