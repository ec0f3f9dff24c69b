import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { printedMetrics } from '../../bench/recovery';
import { describeRun } from '../../cli/commands/runs';
import { packDirectory } from '../../cli/pack';
import { apiRoutes } from '../../local/http-api';
import { latencyModel } from '../../local/latency';
import { apiEvent, ALICE, ALICE_OWNER } from '../support/api-events';
import { processesOf, startWorld, waitFor, type E2eWorld } from './support';

/**
 * The overlap as `runctl status` shows it (docs/recovery.md, "The timeline on the record"): while
 * the replacement is prepared, the warned instance's checkpoint upload is reported in bytes, from
 * the agent's heartbeats through the agent routes to GET /runs/{id}.
 */
let world: E2eWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/** The agent's beat: after a warning it heartbeats every min(heartbeat, 5 s) while the checkpoint goes up. */
const HEARTBEAT_SECONDS = 1;
/** Sixteen shards of a checkpoint: the agent's helper uploads eight at a time, so half of it is up while the rest goes. */
const SHARDS = 16;
const CHECKPOINT_BYTES = 8_000_000;
/** Each half of the upload spans this many beats on the throttled link: a beat lands between the halves even under load. */
const BEATS_PER_HALF = 8;
const UPLOAD_BYTES_PER_SECOND = CHECKPOINT_BYTES / 2 / (BEATS_PER_HALF * HEARTBEAT_SECONDS);
/** Warning → reclaim: longer than the whole upload, so the old instance is never killed mid-upload. */
const RECLAIM_MS = 10 * 2 * BEATS_PER_HALF * HEARTBEAT_SECONDS * 1000;

const context = { functionName: 'get-run', awsRequestId: 'req-upload-progress' } as Context;

describe('local backend: the checkpoint upload in the overlap line', () => {
  it('runctl status shows how much of the checkpoint is up while the replacement is prepared', async () => {
    world = await startWorld({ heartbeatSeconds: HEARTBEAT_SECONDS, latency: latencyModel('instant', { s3UploadBytesPerSecond: UPLOAD_BYTES_PER_SECOND }) });
    const backend = world.backend;
    const packed = await packDirectory(join(import.meta.dirname, '../../bench/recovery-script'));
    const key = `bundles/${packed.sha256}.tar.gz`;
    await backend.s3.send(new PutObjectCommand({ Bucket: backend.services.bucket, Key: key, Body: await readFile(packed.file) }));
    await rm(join(packed.file, '..'), { recursive: true, force: true });
    const submitted = await backend.submit(
      {
        spec: {
          name: 'upload-progress',
          code: { bundle: `s3://${backend.services.bucket}/${key}`, entrypoint: 'train.py' },
          hyperparameters: { checkpoint_bytes: CHECKPOINT_BYTES, checkpoint_files: SHARDS, step_seconds: 0.2, steps_after_resume: 2 },
          instance: { types: ['g5.xlarge', 'g6.xlarge'], spot: true },
          // Only the checkpoint the warning asks for moves.
          checkpoint: { intervalSeconds: 3600, graceSeconds: 30 },
        },
      },
      ALICE_OWNER,
    );
    const getRun = apiRoutes(backend.apiDeps())['GET /runs/{id}'];
    if (getRun === undefined) throw new Error('no GET /runs/{id} route');
    /** What `runctl status RUN` prints, from what GET /runs/{id} answers. */
    const status = async (): Promise<string> => {
      const response = await getRun(
        apiEvent({ method: 'GET', path: `/runs/${submitted.runId}`, routeKey: 'GET /runs/{id}', caller: ALICE, pathParameters: { id: submitted.runId } }),
        context,
      );
      if (typeof response !== 'object' || response.statusCode !== 200) throw new Error(`GET /runs/{id}: ${JSON.stringify(response)}`);
      return describeRun(JSON.parse(response.body ?? '{}'), undefined, new Date());
    };
    // The script has taken a step (it saves on the stop signal only once it has one).
    await waitFor('the script training', async () => ((await printedMetrics(backend, submitted.runId)) ? true : undefined));

    await backend.interrupt(submitted.runId, { graceMs: RECLAIM_MS });
    const seen = new Set<string>();
    const progress = await waitFor('the overlap line with the upload in bytes', async () => {
      const line = (await status()).split('\n').find((l) => l.startsWith('Recovering'));
      if (line !== undefined) seen.add(line);
      const match = line === undefined ? null : /uploads its checkpoint: ([\d.]+) of ([\d.]+) MB/.exec(line);
      return match === null ? undefined : { line, up: Number(match[1]), total: Number(match[2]) };
    }, RECLAIM_MS);
    const record = await backend.waitForRun(submitted.runId);

    expect(progress.line).toMatch(/^Recovering {2}replacement i-\S+ (booting|online, copying data|ready) while i-\S+ uploads its checkpoint: /);
    expect(progress.total).toBe(CHECKPOINT_BYTES / 1e6);
    // Seen mid-upload: part of the checkpoint up, the rest still going (the lines seen, if not).
    expect(progress.up, [...seen].join('\n')).toBeGreaterThan(0);
    expect(progress.up, [...seen].join('\n')).toBeLessThan(progress.total);
    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(1);
    // The upload went on after that line: the complete checkpoint is what attempt 2 resumed from.
    expect(record.attempts[1]?.resumeFrom).toMatch(/\/checkpoints\/0001-\d{6}\/$/);
    // The shards and the script's step file: what the agent reported it was uploading.
    const total = record.attempts[0]?.checkpointUpload?.totalBytes ?? 0;
    expect(total).toBeGreaterThanOrEqual(CHECKPOINT_BYTES);
    expect(total).toBeLessThan(CHECKPOINT_BYTES + 1000);
    expect(await processesOf(record)).toEqual([]);
  }, 400_000);
});
