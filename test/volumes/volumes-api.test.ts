import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as createCreateImage } from '../../functions/api/create-image';
import { createHandler as createCreateVolume } from '../../functions/api/create-volume';
import { createHandler as createListVolumes } from '../../functions/api/list-volumes';
import { DynamoCatalog } from '../../shared/adapters/dynamo-catalog';
import { SfnExecutions } from '../../shared/adapters/sfn-executions';
import type { VolumeApiDeps } from '../../shared/composition/volumes';
import { ALICE_OWNER, apiEvent, lambdaContext } from '../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';

const PREWARM = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-prewarm-volume';
const BUILD = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-build-image';
const SHA = 'c'.repeat(64);
const volumeBody = { dataset: 's3://datasets-bucket/imagenet/', az: 'us-east-1a', sizeGiB: 500 };

const body = (result: { body?: string }): Record<string, unknown> => JSON.parse(result.body ?? '{}');

describe('volume and image API handlers', () => {
  let dynalite: RunningDynalite;
  let deps: VolumeApiDeps;
  const sfnClient = new SFNClient({ region: 'us-east-1' });
  const sfn = mockClient(sfnClient);
  const started = (arn: string) => sfn.commandCalls(StartExecutionCommand).filter((c) => c.args[0].input.stateMachineArn === arn);

  const postVolume = (payload: unknown) =>
    createCreateVolume(() => deps)(apiEvent({ method: 'POST', path: '/volumes', routeKey: 'POST /volumes', body: payload }), lambdaContext());
  const postImage = (payload: unknown) =>
    createCreateImage(() => deps)(apiEvent({ method: 'POST', path: '/images', routeKey: 'POST /images', body: payload }), lambdaContext());
  const getVolumes = (query?: Record<string, string>) =>
    createListVolumes(() => deps)(apiEvent({ method: 'GET', path: '/volumes', routeKey: 'GET /volumes', query }), lambdaContext());

  beforeAll(async () => {
    dynalite = await startDynalite();
    const table = `volumes-api-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    deps = {
      catalog: new DynamoCatalog(dynamoDocumentClient(dynalite.endpoint), table),
      prewarms: new SfnExecutions(sfnClient, PREWARM),
      builds: new SfnExecutions(sfnClient, BUILD),
      clock: () => new Date(),
      runsBucket: 'runctl-runs',
    };
  });
  afterAll(async () => dynalite.close());
  beforeEach(() => {
    sfn.reset();
    sfn.on(StartExecutionCommand).callsFake((input: { stateMachineArn?: string; name?: string }) => ({
      executionArn: `${(input.stateMachineArn ?? '').replace(':stateMachine:', ':execution:')}:${input.name}`,
      startDate: new Date(),
    }));
  });

  it('POST /volumes starts a prewarm execution with the validated request and defaults', async () => {
    const result = await postVolume({ ...volumeBody, clientToken: 'imagenet-1' });

    expect(result.statusCode).toBe(202);
    const answer = body(result);
    expect(answer.prewarmId).toMatch(/^prewarm-[0-9a-f]{16}$/);
    const start = started(PREWARM)[0]?.args[0].input;
    expect(start?.name).toBe(answer.prewarmId);
    expect(JSON.parse(start?.input ?? '{}')).toEqual({ owner: ALICE_OWNER, request: { ...volumeBody, type: 'gp3' } });
  });

  it('POST /volumes with the same client token names the same execution', async () => {
    const first = body(await postVolume({ ...volumeBody, clientToken: 'same' }));
    const again = body(await postVolume({ ...volumeBody, clientToken: 'same' }));
    expect(again.prewarmId).toBe(first.prewarmId);
  });

  it.each([
    ['a missing dataset', { az: 'us-east-1a', sizeGiB: 10 }, 'dataset'],
    ['a bad AZ', { ...volumeBody, az: 'east' }, 'az'],
    ['a fractional size', { ...volumeBody, sizeGiB: 1.5 }, 'sizeGiB'],
    ['an unknown volume type', { ...volumeBody, type: 'ssd' }, 'type'],
    ['io2 without iops', { ...volumeBody, type: 'io2' }, 'iops'],
    ['a bad snapshot id', { ...volumeBody, fromSnapshot: 'my-snapshot' }, 'fromSnapshot'],
    ['an unknown field', { ...volumeBody, zone: 'us-east-1a' }, '(root)'],
    ['a bad client token', { ...volumeBody, clientToken: 'has spaces' }, 'clientToken'],
  ])('POST /volumes answers %s with a 400 naming the field', async (_label, payload, path) => {
    const result = await postVolume(payload);

    expect(result.statusCode).toBe(400);
    const { issues, message } = body(result);
    expect(issues).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    expect(message).toContain(path === '(root)' ? 'zone' : path);
    expect(started(PREWARM)).toHaveLength(0);
  });

  it('GET /volumes lists the caller\'s catalog newest first, page by page', async () => {
    for (const [i, name] of ['a', 'b', 'c'].entries()) {
      await deps.catalog.putVolume({
        owner: ALICE_OWNER, datasetUri: `s3://datasets-bucket/${name}/`, sizeGiB: 10, az: 'us-east-1a', volumeId: `vol-${i}`, snapshotId: `snap-${i}`,
        volumeType: 'gp3', bytes: 100 * i, files: i, createdAt: `2026-11-2${i}T00:00:00Z`, prewarmId: `prewarm-${i}`,
      });
    }

    const first = body(await getVolumes({ limit: '2' }));
    const second = body(await getVolumes({ limit: '2', nextToken: String(first.nextToken) }));

    expect(first.volumes).toMatchObject([{ datasetUri: 's3://datasets-bucket/c/' }, { datasetUri: 's3://datasets-bucket/b/' }]);
    expect(second.volumes).toMatchObject([{ datasetUri: 's3://datasets-bucket/a/', volumeId: 'vol-0', snapshotId: 'snap-0' }]);
    expect(second.nextToken).toBeUndefined();
    expect((await getVolumes({ limit: '0' })).statusCode).toBe(400);
    expect((await getVolumes({ nextToken: 'garbage' })).statusCode).toBe(400);
  });

  it('POST /images starts one build per bundle, and answers with the image once it is catalogued', async () => {
    const bundle = `s3://runctl-runs/bundles/${SHA}.tar.gz`;
    const first = await postImage({ bundle });
    const second = await postImage({ bundle });

    expect(first.statusCode).toBe(202);
    expect(body(first)).toMatchObject({ status: 'building', bundleSha: SHA });
    expect(body(second).buildId).toBe(body(first).buildId);
    expect(JSON.parse(started(BUILD)[0]?.args[0].input.input ?? '{}')).toEqual({
      owner: ALICE_OWNER,
      request: { bundle, bundleSha: SHA, repository: 'training', rebuild: false },
    });

    await deps.catalog.putImage({
      owner: ALICE_OWNER, bundleSha: SHA, repository: 'runctl/training', imageUri: 'x@sha256:1', digest: 'sha256:1',
      tag: `bundle-${SHA}-build-1`, buildId: 'build-1', dockerfile: 'Dockerfile', createdAt: 'now',
    });
    const built = await postImage({ bundle });
    expect(built.statusCode).toBe(200);
    expect(body(built)).toMatchObject({ status: 'built', image: { digest: 'sha256:1' } });
  });

  it.each([
    ['a bundle that is not a .tar.gz in S3', { bundle: '/tmp/code.tar.gz' }, 'bundle'],
    ['a bundle without a sha256', { bundle: 's3://runctl-runs/bundles/latest.tar.gz' }, 'bundleSha'],
    ['another run\'s files in the runs bucket', { bundle: 's3://runctl-runs/runs/r-victim/outputs/model.tar.gz', bundleSha: SHA }, 'bundle'],
    ['a bundle in another bucket', { bundle: `s3://elsewhere/bundles/${SHA}.tar.gz` }, 'bundle'],
    ['shell text in the bundle URI', { bundle: 's3://runctl-runs/bundles/$(touch canary).tar.gz', bundleSha: SHA }, 'bundle'],
    ['a Dockerfile outside the bundle', { bundle: `s3://runctl-runs/bundles/${SHA}.tar.gz`, dockerfile: '../Dockerfile' }, 'dockerfile'],
  ])('POST /images answers %s with a 400 naming the field', async (_label, payload, path) => {
    const result = await postImage(payload);

    expect(result.statusCode).toBe(400);
    expect(body(result).issues).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    expect(started(BUILD)).toHaveLength(0);
  });

  it('a failure inside is a 500 that shows no internals', async () => {
    sfn.reset();
    sfn.on(StartExecutionCommand).rejects(Object.assign(new Error('arn:aws:iam::123456789012:role/x is not authorized'), { name: 'AccessDeniedException' }));

    const result = await postVolume(volumeBody);

    expect(result.statusCode).toBe(500);
    expect(result.body).not.toMatch(/arn:aws|AccessDenied/);
  });
});
