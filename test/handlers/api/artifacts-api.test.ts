import { createHash } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as createCreateRun } from '../../../functions/api/create-run';
import { createHandler as createCreateUpload } from '../../../functions/api/create-upload';
import { createHandler as createGetLogs } from '../../../functions/api/get-logs';
import { createHandler as createGetMetrics } from '../../../functions/api/get-metrics';
import { createHandler as createListCheckpoints } from '../../../functions/api/list-checkpoints';
import { createHandler as createListOutputs } from '../../../functions/api/list-outputs';
import { DynamoRunStore } from '../../../shared/adapters/dynamo-run-store';
import { SfnExecutions } from '../../../shared/adapters/sfn-executions';
import { apiLogger, type ApiDeps } from '../../../shared/composition/api';
import type { RunsBucketDeps } from '../../../shared/usecases/run-artifacts';
import { MAX_BUNDLE_BYTES } from '../../../shared/usecases/uploads';
import { ALICE, BOB, apiEvent, lambdaContext } from '../../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../../support/dynalite';
import { startS3rver, type S3rverHandle } from '../../support/s3rver';

const BUCKET = 'runctl-artifacts-api';
const STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-train-run';

const spec = {
  name: 'resnet',
  code: { bundle: `s3://${BUCKET}/bundles/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.tar.gz`, entrypoint: 'train.py' },
  instance: { types: 'g5.xlarge' },
};

type Body = Record<string, unknown>;
const body = (result: { body?: string }): Body => JSON.parse(result.body ?? '{}');

describe('artifact API handlers (dynalite + s3rver)', () => {
  let dynalite: RunningDynalite;
  let s3rver: S3rverHandle;
  let s3: S3Client;
  let deps: ApiDeps & RunsBucketDeps;
  const sfnClient = new SFNClient({ region: 'us-east-1' });
  const sfn = mockClient(sfnClient);

  const put = (key: string, text: string | Buffer) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: text }));

  async function newRun(token: string): Promise<string> {
    const result = await createCreateRun(() => deps)(
      apiEvent({ method: 'POST', path: '/runs', routeKey: 'POST /runs', body: { clientToken: token, spec } }),
      lambdaContext(),
    );
    return String(body(result).runId);
  }

  const runRoute = (
    create: typeof createGetLogs,
    runId: string,
    suffix: string,
    query?: Record<string, string>,
    caller = ALICE,
  ) =>
    create(() => deps)(
      apiEvent({ method: 'GET', path: `/runs/${runId}/${suffix}`, routeKey: `GET /runs/{id}/${suffix}`, caller, pathParameters: { id: runId }, query }),
      lambdaContext(),
    );

  beforeAll(async () => {
    [dynalite, s3rver] = await Promise.all([startDynalite(), startS3rver([BUCKET])]);
    const table = `artifacts-api-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    s3 = new S3Client({ endpoint: s3rver.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3rver.credentials });
    deps = {
      store: new DynamoRunStore(dynamoDocumentClient(dynalite.endpoint), table),
      executions: new SfnExecutions(sfnClient, STATE_MACHINE),
      clock: () => new Date(),
      logger: apiLogger,
      s3,
      runsBucket: BUCKET,
    };
  });
  afterAll(async () => {
    s3.destroy();
    await Promise.all([dynalite.close(), s3rver.stop()]);
  });
  beforeEach(() => {
    sfn.reset();
    sfn.on(StartExecutionCommand).callsFake((input: { name?: string }) => ({
      executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:${input.name}`,
      startDate: new Date(),
    }));
  });

  describe('POST /uploads', () => {
    const upload = (payload: unknown) =>
      createCreateUpload(() => deps)(apiEvent({ method: 'POST', path: '/uploads', routeKey: 'POST /uploads', body: payload }), lambdaContext());

    it('hands out a presigned PUT that stores the bundle under its hash, then reports it as existing', async () => {
      const bundle = Buffer.from('pretend this is a tar.gz');
      const sha256 = createHash('sha256').update(bundle).digest('hex');

      const first = await upload({ sha256, bytes: bundle.length });
      const ticket = body(first);
      const headers = ticket.uploadHeaders as Record<string, string>;
      const putResponse = await fetch(String(ticket.uploadUrl), { method: 'PUT', body: bundle, headers });
      const second = body(await upload({ sha256, bytes: bundle.length }));

      expect(first.statusCode).toBe(200);
      expect(ticket).toMatchObject({ bundle: `s3://${BUCKET}/bundles/${sha256}.tar.gz`, exists: false, expiresInSeconds: 900 });
      expect(String(ticket.uploadUrl)).toContain(`/bundles/${sha256}.tar.gz?`);
      expect(String(ticket.uploadUrl)).toContain('X-Amz-Expires=900');
      // The checksum and If-None-Match are signed headers the PUT must carry, not query parameters.
      const url = new URL(String(ticket.uploadUrl));
      expect(url.searchParams.get('X-Amz-SignedHeaders')?.split(';')).toEqual(expect.arrayContaining(['content-length', 'if-none-match', 'x-amz-checksum-sha256']));
      expect(url.searchParams.has('x-amz-checksum-sha256')).toBe(false);
      expect(headers).toMatchObject({ 'x-amz-checksum-sha256': Buffer.from(sha256, 'hex').toString('base64'), 'if-none-match': '*' });
      expect(putResponse.status).toBe(200);
      expect(second).toEqual({ bundle: `s3://${BUCKET}/bundles/${sha256}.tar.gz`, exists: true });
    });

    it('refuses a bundle over the limit with a 400 that says how to shrink it', async () => {
      const result = await upload({ sha256: 'a'.repeat(64), bytes: MAX_BUNDLE_BYTES + 1 });

      expect(result.statusCode).toBe(400);
      expect(body(result).issues).toEqual([expect.objectContaining({ path: 'bytes' })]);
      expect(body(result).message).toMatch(/500\.0 MiB limit.*\.runctlignore/);
    });

    it('names each bad field', async () => {
      const result = await upload({ sha256: 'not-a-hash', bytes: -3 });

      expect(result.statusCode).toBe(400);
      expect(body(result).issues).toEqual(
        expect.arrayContaining([expect.objectContaining({ path: 'sha256' }), expect.objectContaining({ path: 'bytes' })]),
      );
    });
  });

  describe('GET /runs/{id}/logs', () => {
    it('returns the newest attempt\'s tail by default and a byte range to poll from', async () => {
      const runId = await newRun('logs-1');
      await deps.store.appendAttempt(runId, { attempt: 1, spot: true, startedAt: new Date().toISOString() });
      await deps.store.appendAttempt(runId, { attempt: 2, spot: true, startedAt: new Date().toISOString() });
      await put(`runs/${runId}/logs/attempt-1.log`, 'first attempt\n');
      const log = Array.from({ length: 300 }, (_, i) => `line ${i}`).join('\n') + '\n';
      await put(`runs/${runId}/logs/attempt-2.log`, log);

      const tail = body(await runRoute(createGetLogs, runId, 'logs', { tail: '3' }));
      const byDefault = body(await runRoute(createGetLogs, runId, 'logs'));
      const range = body(await runRoute(createGetLogs, runId, 'logs', { attempt: '2', offset: '7', length: '9' }));
      const older = body(await runRoute(createGetLogs, runId, 'logs', { attempt: '1' }));
      const atEnd = body(await runRoute(createGetLogs, runId, 'logs', { offset: String(Buffer.byteLength(log)) }));

      expect(tail).toMatchObject({ attempt: 2, attempts: [1, 2], text: 'line 297\nline 298\nline 299\n', size: Buffer.byteLength(log), nextOffset: Buffer.byteLength(log) });
      expect(log.slice(Number(tail.offset))).toBe(tail.text);
      expect(String(byDefault.text).split('\n')).toHaveLength(201);
      expect(range).toMatchObject({ offset: 7, nextOffset: 16, text: 'line 1\nli' });
      expect(older).toMatchObject({ attempt: 1, text: 'first attempt\n' });
      expect(atEnd).toMatchObject({ text: '', nextOffset: Buffer.byteLength(log) });
    });

    it('continues the consolidated log with the live chunks past it, in offset order, up to the first gap', async () => {
      const runId = await newRun('logs-live');
      await deps.store.appendAttempt(runId, { attempt: 1, spot: true, startedAt: new Date().toISOString() });
      await put(`runs/${runId}/logs/attempt-1.log`, 'epoch 1\nepo');
      // The chunks the shipper PUT: the first overlaps the consolidated object, the last is past a gap.
      await put(`runs/${runId}/live/attempt-1/log-000000000000`, 'epoch 1\n');
      await put(`runs/${runId}/live/attempt-1/log-000000000008`, 'epoch 2\n');
      await put(`runs/${runId}/live/attempt-1/log-000000000016`, 'epoch 3\n');
      await put(`runs/${runId}/live/attempt-1/log-000000000032`, 'epoch 5\n');

      const tail = body(await runRoute(createGetLogs, runId, 'logs'));
      const range = body(await runRoute(createGetLogs, runId, 'logs', { offset: '10', length: '100' }));
      await put(`runs/${runId}/live/attempt-1/log-000000000024`, 'epoch 4\n');
      const filled = body(await runRoute(createGetLogs, runId, 'logs', { offset: String(range.nextOffset) }));

      expect(tail).toMatchObject({ text: 'epoch 1\nepoch 2\nepoch 3\n', size: 24, nextOffset: 24 });
      expect(range).toMatchObject({ offset: 10, text: 'och 2\nepoch 3\n', nextOffset: 24 });
      expect(filled).toMatchObject({ offset: 24, text: 'epoch 4\nepoch 5\n', size: 40 });
    });

    it('never splits a UTF-8 character across two reads', async () => {
      const runId = await newRun('logs-utf8');
      await put(`runs/${runId}/logs/attempt-1.log`, 'loss ↓ 0.5\n');

      const first = body(await runRoute(createGetLogs, runId, 'logs', { offset: '0', length: '6' }));
      const rest = body(await runRoute(createGetLogs, runId, 'logs', { offset: String(first.nextOffset) }));

      expect(first).toMatchObject({ text: 'loss ', nextOffset: 5 });
      expect(`${String(first.text)}${String(rest.text)}`).toBe('loss ↓ 0.5\n');
    });

    it('answers an attempt without a log yet with an empty text, another owner with a 404, and bad queries with a 400', async () => {
      const runId = await newRun('logs-empty');

      const empty = await runRoute(createGetLogs, runId, 'logs');
      const other = await runRoute(createGetLogs, runId, 'logs', undefined, BOB);
      const bad = await runRoute(createGetLogs, runId, 'logs', { offset: '-1', tail: '5' });
      const never = await runRoute(createGetLogs, runId, 'logs', { attempt: '99' });

      expect(body(empty)).toMatchObject({ attempt: 1, size: 0, text: '', nextOffset: 0 });
      expect(other.statusCode).toBe(404);
      expect(bad.statusCode).toBe(400);
      expect(body(bad).issues).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'offset' })]));
      // An attempt the run never had is not an empty log.
      expect(never.statusCode).toBe(404);
      expect(body(never).message).toMatch(new RegExp(`Run ${runId} has no attempt 99: it has (no attempts yet|\\d+ attempts?)`));
    });
  });

  describe('GET /runs/{id}/metrics', () => {
    it('pages through metrics.jsonl, skips lines that are not JSON objects, and resumes after new lines', async () => {
      const runId = await newRun('metrics-1');
      const lines = Array.from({ length: 5 }, (_, i) => JSON.stringify({ ts: `2026-01-01T00:00:0${i}Z`, attempt: 1, step: i, loss: 1 / (i + 1) }));
      const stored = `${lines.slice(0, 2).join('\n')}\nnot json\n[1,2]\n${lines.slice(2).join('\n')}\n`;
      await put(`runs/${runId}/metrics.jsonl`, stored);

      const first = body(await runRoute(createGetMetrics, runId, 'metrics', { limit: '2' }));
      const second = body(await runRoute(createGetMetrics, runId, 'metrics', { limit: '2', nextToken: String(first.nextToken) }));
      const third = body(await runRoute(createGetMetrics, runId, 'metrics', { limit: '2', nextToken: String(second.nextToken) }));
      await put(`runs/${runId}/metrics.jsonl`, `${stored}${JSON.stringify({ step: 5, loss: 0.1 })}\n`);
      const resumed = body(await runRoute(createGetMetrics, runId, 'metrics', { nextToken: String(third.resumeToken) }));

      const steps = (page: Body) => (page.metrics as Body[]).map((m) => m.step);
      expect(steps(first)).toEqual([0, 1]);
      expect(steps(second)).toEqual([2, 3]);
      expect(steps(third)).toEqual([4]);
      expect(third.nextToken).toBeUndefined();
      expect(steps(resumed)).toEqual([5]);
    });

    it('continues metrics.jsonl with the newest attempt\'s live rows', async () => {
      const runId = await newRun('metrics-live');
      await deps.store.appendAttempt(runId, { attempt: 1, spot: true, startedAt: new Date().toISOString() });
      await deps.store.appendAttempt(runId, { attempt: 2, spot: true, startedAt: new Date().toISOString() });
      const stored = '{"ts":"t1","attempt":1,"loss":1}\n';
      const live = '{"ts":"t2","attempt":2,"loss":0.5}\n';
      await put(`runs/${runId}/metrics.jsonl`, stored);
      await put(`runs/${runId}/live/attempt-2/metrics-${String(Buffer.byteLength(stored)).padStart(12, '0')}`, live);
      await put(`runs/${runId}/live/attempt-1/metrics-000000000000`, '{"ts":"old","attempt":1,"loss":9}\n');

      const page = body(await runRoute(createGetMetrics, runId, 'metrics'));

      expect(page.metrics).toEqual([{ ts: 't1', attempt: 1, loss: 1 }, { ts: 't2', attempt: 2, loss: 0.5 }]);
    });

    it('is empty before the first upload, a 404 for another owner and a 400 for a forged token', async () => {
      const runId = await newRun('metrics-empty');

      const empty = body(await runRoute(createGetMetrics, runId, 'metrics'));
      const other = await runRoute(createGetMetrics, runId, 'metrics', undefined, BOB);
      const forged = await runRoute(createGetMetrics, runId, 'metrics', { nextToken: 'bm9wZQ' });

      expect(empty).toMatchObject({ metrics: [] });
      expect(empty.nextToken).toBeUndefined();
      expect(other.statusCode).toBe(404);
      expect(forged.statusCode).toBe(400);
      expect(body(forged).issues).toEqual([expect.objectContaining({ path: 'nextToken' })]);
    });
  });

  describe('GET /runs/{id}/checkpoints', () => {
    it('lists complete checkpoints newest first and marks the one latest.json points at', async () => {
      const runId = await newRun('ckpt-1');
      const prefix = `runs/${runId}/checkpoints`;
      for (const id of ['0001-000001', '0001-000002', '0002-000003']) {
        await put(`${prefix}/${id}/model.pt`, 'weights');
        await put(`${prefix}/${id}/_COMPLETE.json`, '{}');
      }
      await put(`${prefix}/0002-000004/model.pt`, 'half-uploaded, no marker');
      await put(`${prefix}/latest.json`, JSON.stringify({ uri: `s3://${BUCKET}/${prefix}/0002-000003/`, attempt: 2, seq: 3, createdAt: '2026-01-01T00:00:00Z' }));

      const result = await runRoute(createListCheckpoints, runId, 'checkpoints');
      const other = await runRoute(createListCheckpoints, runId, 'checkpoints', undefined, BOB);

      expect(result.statusCode).toBe(200);
      const list = body(result);
      expect((list.checkpoints as Body[]).map((c) => c.id)).toEqual(['0002-000003', '0001-000002', '0001-000001']);
      expect((list.checkpoints as Body[]).map((c) => c.latest)).toEqual([true, false, false]);
      expect(list.latest).toBe('0002-000003');
      expect(other.statusCode).toBe(404);
    });
  });

  describe('GET /runs/{id}/outputs', () => {
    it('lists the output files by path with their sizes, leaves the manifest out and reports it', async () => {
      const runId = await newRun('outputs-1');
      const prefix = `runs/${runId}/outputs`;
      await put(`${prefix}/model/weights.pt`, Buffer.alloc(2048, 1));
      await put(`${prefix}/metrics.json`, '{"acc": 0.9}');
      await put(`${prefix}/_manifest.json`, JSON.stringify({ uri: `s3://${BUCKET}/${prefix}/`, attempt: 2, files: [{ key: 'metrics.json', bytes: 12 }, { key: 'model/weights.pt', bytes: 2048 }], bytes: 2060 }));
      await put(`runs/${runId}/checkpoints/0001-000001/model.pt`, 'not an output');

      const result = await runRoute(createListOutputs, runId, 'outputs');

      expect(result.statusCode).toBe(200);
      const list = body(result);
      expect(list.outputs).toEqual([
        { path: 'metrics.json', size: 12, lastModified: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
        { path: 'model/weights.pt', size: 2048, lastModified: expect.any(String) },
      ]);
      expect(list.manifest).toEqual({ manifestUri: `s3://${BUCKET}/${prefix}/_manifest.json`, uri: `s3://${BUCKET}/${prefix}/`, attempt: 2, files: 2, bytes: 2060 });
      expect(list.nextToken).toBeUndefined();
    });

    it('pages with limit and nextToken, and answers a run without outputs with an empty list', async () => {
      const runId = await newRun('outputs-2');
      for (const name of ['a.txt', 'b.txt', 'c.txt']) await put(`runs/${runId}/outputs/${name}`, name);
      await put(`runs/${runId}/outputs/_manifest.json`, '{}');
      const empty = await newRun('outputs-3');

      const first = body(await runRoute(createListOutputs, runId, 'outputs', { limit: '2' }));
      const second = body(await runRoute(createListOutputs, runId, 'outputs', { limit: '2', nextToken: String(first.nextToken) }));
      const none = body(await runRoute(createListOutputs, empty, 'outputs'));

      expect((first.outputs as Body[]).map((o) => o.path)).toEqual(['a.txt', 'b.txt']);
      expect(first.nextToken).toEqual(expect.any(String));
      expect((second.outputs as Body[]).map((o) => o.path)).toEqual(['c.txt']);
      expect(second.nextToken).toBeUndefined();
      // A manifest that does not parse is not reported.
      expect(second.manifest).toBeUndefined();
      expect(none).toEqual({ runId: empty, outputs: [] });
    });

    it('answers another owner with a 404 and a bad query with a 400 that names the field', async () => {
      const runId = await newRun('outputs-4');
      await put(`runs/${runId}/outputs/secret.bin`, 'alice only');

      const other = await runRoute(createListOutputs, runId, 'outputs', undefined, BOB);
      const badLimit = await runRoute(createListOutputs, runId, 'outputs', { limit: '5000' });
      const badToken = await runRoute(createListOutputs, runId, 'outputs', { nextToken: '../../x' });

      expect(other.statusCode).toBe(404);
      expect(other.body).not.toContain('secret.bin');
      expect(badLimit.statusCode).toBe(400);
      expect(body(badLimit).issues).toEqual([expect.objectContaining({ path: 'limit' })]);
      expect(badToken.statusCode).toBe(400);
      expect(body(badToken).issues).toEqual([expect.objectContaining({ path: 'nextToken' })]);
    });
  });
});
