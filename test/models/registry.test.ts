import { createHash } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler as createDownload } from '../../functions/api/download-model';
import { createHandler as createGetModel } from '../../functions/api/get-model';
import { createHandler as createListModels } from '../../functions/api/list-models';
import { createHandler as createPromote } from '../../functions/api/promote-model';
import { createHandler as createRegister } from '../../functions/api/register-model';
import { DynamoModels } from '../../shared/adapters/dynamo-models';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { S3ModelBlobs, blobKey } from '../../shared/adapters/s3-model-blobs';
import { parseRunSpec } from '../../shared/domain/run-spec';
import { ConflictError } from '../../shared/errors';
import type { ModelDeps } from '../../shared/usecases/models';
import { ALICE, ALICE_OWNER, BOB, apiEvent, lambdaContext } from '../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { startS3rver, type S3rverHandle } from '../support/s3rver';

const BUCKET = 'runctl-models';
const BUNDLE_SHA = 'a'.repeat(64);
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

interface Body {
  [key: string]: unknown;
}
const body = (result: { body?: string }): Body => JSON.parse(result.body ?? '{}');

describe('model registry', () => {
  let dynalite: RunningDynalite;
  let s3rver: S3rverHandle;
  let s3: S3Client;
  let deps: ModelDeps;
  const call = <E>(handler: (event: E, context: ReturnType<typeof lambdaContext>) => Promise<unknown>, event: E) => handler(event, lambdaContext()) as Promise<{ statusCode: number; body?: string }>;
  const register = (name: string, runId: string, caller = ALICE) =>
    call(createRegister(() => deps), apiEvent({ method: 'POST', path: `/models/${name}/versions`, routeKey: 'POST /models/{name}/versions', pathParameters: { name }, body: { runId }, caller }));
  const show = (name: string, caller = ALICE) =>
    call(createGetModel(() => deps), apiEvent({ method: 'GET', path: `/models/${name}`, routeKey: 'GET /models/{name}', pathParameters: { name }, caller }));
  const promote = (name: string, payload: unknown, caller = ALICE) =>
    call(createPromote(() => deps), apiEvent({ method: 'POST', path: `/models/${name}/promote`, routeKey: 'POST /models/{name}/promote', pathParameters: { name }, body: payload, caller }));
  const download = (name: string, version: string, caller = ALICE) =>
    call(createDownload(() => deps), apiEvent({ method: 'GET', path: `/models/${name}/versions/${version}/download`, routeKey: 'GET /models/{name}/versions/{version}/download', pathParameters: { name, version }, caller }));

  beforeAll(async () => {
    [dynalite, s3rver] = await Promise.all([startDynalite(), startS3rver([BUCKET])]);
    const table = `models-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    const documents = dynamoDocumentClient(dynalite.endpoint);
    s3 = new S3Client({ endpoint: s3rver.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3rver.credentials });
    deps = { store: new DynamoRunStore(documents, table), models: new DynamoModels(documents, table), blobs: new S3ModelBlobs(s3, BUCKET), clock: () => new Date() };
    const now = new Date().toISOString();
    await deps.store.create({
      runId: 'r-best',
      owner: ALICE_OWNER,
      spec: parseRunSpec({
        name: 'mlp',
        code: { bundle: `s3://${BUCKET}/bundles/${BUNDLE_SHA}.tar.gz`, entrypoint: 'train.py' },
        instance: { types: 'g5.xlarge' },
        hyperparameters: { lr: 0.01 },
        data: ['s3://datasets/mnist/:/data'],
      }),
      specHash: 'h',
      status: 'SUCCEEDED',
      createdAt: now,
      updatedAt: now,
      attempts: [],
      costUsd: 0.2,
      interruptions: 0,
      userFailures: 0,
      metrics: { final: { loss: 0.12 }, min: { loss: 0.1 }, max: { loss: 1 }, points: 9 },
    });
    for (const [path, text] of [['model.json', '{"w":[1,2]}'], ['vocab/words.txt', 'a\nb\n'], ['copy.json', '{"w":[1,2]}'], ['_manifest.json', '{}']]) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `runs/r-best/outputs/${path}`, Body: text }));
    }
  });

  afterAll(async () => {
    s3.destroy();
    await Promise.all([dynalite.close(), s3rver.stop()]);
  });

  it('registers the outputs as version n, content-addressed, with the lineage of the run', async () => {
    const first = await register('digits', 'r-best');
    expect(first.statusCode).toBe(201);
    expect(body(first)).toMatchObject({
      name: 'digits',
      version: 1,
      files: [
        { path: 'copy.json', size: 11, sha256: sha('{"w":[1,2]}') },
        { path: 'model.json', size: 11, sha256: sha('{"w":[1,2]}') },
        { path: 'vocab/words.txt', size: 4, sha256: sha('a\nb\n') },
      ],
      lineage: {
        runId: 'r-best',
        bundleDigest: `sha256:${BUNDLE_SHA}`,
        dataSources: [{ source: 's3://datasets/mnist/', target: '/data' }],
        hyperparameters: { lr: '0.01' },
        finalMetrics: { loss: 0.12 },
      },
    });
    expect(body(await register('digits', 'r-best')).version).toBe(2);
    const listed = await call(createListModels(() => deps), apiEvent({ method: 'GET', path: '/models', routeKey: 'GET /models' }));
    expect(body(listed).models).toMatchObject([{ name: 'digits', latestVersion: 2 }]);
  });

  it("survives the run's outputs being deleted: the download reads the blobs and their sha256 match", async () => {
    for (const path of ['model.json', 'vocab/words.txt', 'copy.json']) {
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `runs/r-best/outputs/${path}` }));
    }
    const answer = await download('digits', '1');
    expect(answer.statusCode).toBe(200);
    const files = body(answer).files;
    if (!Array.isArray(files)) throw new Error('no files');
    for (const file of files) {
      const response = await fetch(String(file.url));
      const bytes = Buffer.from(await response.arrayBuffer());
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(file.sha256);
    }
    expect(String(files[0]?.url)).toContain(blobKey(sha('{"w":[1,2]}')));
  });

  it('promotes one version per stage with a conditional write, and keeps the history', async () => {
    expect((await promote('digits', { version: 1, stage: 'production' })).statusCode).toBe(200);
    const moved = await promote('digits', { version: 2, stage: 'production' });
    expect(body(moved).stages).toEqual({ production: 2 });
    const shown = body(await show('digits'));
    expect(shown.history).toMatchObject([
      { stage: 'production', version: 1 },
      { stage: 'production', version: 2, previous: 1 },
    ]);
    expect((await download('digits', 'production')).statusCode).toBe(200);
    // A writer that read the stage before the last move loses.
    await expect(deps.models.promote(ALICE_OWNER, 'digits', { stage: 'production', version: 1, previous: 1, at: new Date().toISOString() }, 1)).rejects.toBeInstanceOf(ConflictError);
    expect((await promote('digits', { version: 9, stage: 'production' })).statusCode).toBe(404);
    const bad = await promote('digits', { version: 1, stage: 'Prod uction' });
    expect(bad.statusCode).toBe(400);
    expect(body(bad).message).toMatch(/stage/);
  });

  it("answers 404 to another owner, for the model and for registering someone else's run", async () => {
    expect((await show('digits', BOB)).statusCode).toBe(404);
    expect((await download('digits', '1', BOB)).statusCode).toBe(404);
    expect((await promote('digits', { version: 1, stage: 'production' }, BOB)).statusCode).toBe(404);
    expect((await register('stolen', 'r-best', BOB)).statusCode).toBe(404);
  });
});
