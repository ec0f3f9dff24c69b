import { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../../../functions/steps/await-replacement';
import type { DynamoRunStore } from '../../../shared/adapters/dynamo-run-store';
import { S3Artifacts } from '../../../shared/adapters/s3-artifacts';
import type { Replacement, RunRecord } from '../../../shared/domain/run-record';
import { parseRunSpec } from '../../../shared/domain/run-spec';
import type { RecordStepDeps } from '../../../shared/usecases/step-deps';
import { runStoreOn, stepConfig } from '../../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../../support/dynalite';

/**
 * AwaitReplacement's handler over dynalite: it stores the wait's token only while the replacement
 * is still being prepared, and otherwise fails at once with Replacement.Settled, so the machine
 * goes straight on to adopt it (the ASL's Catch) instead of waiting for an answer that was sent before.
 */
const TABLE = 'runs';
const context = { functionName: 'await-replacement', awsRequestId: 'req-1' } as Context;
const spec = parseRunSpec({ name: 'mnist', code: { bundle: 's3://runctl-code/bundles/abc.tar.gz', entrypoint: 'train.py' }, instance: { types: ['g5.xlarge'] } });
const REPLACEMENT: Replacement = { attempt: 2, instanceId: 'i-0next', instanceType: 'g6.xlarge', availabilityZone: 'us-east-1b', spot: true, launchedAt: '2026-12-02T06:00:00.000Z' };

let dynalite: RunningDynalite;
let store: DynamoRunStore;
let handler: ReturnType<typeof createHandler>;
let sequence = 0;

beforeAll(async () => {
  dynalite = await startDynalite();
  store = await runStoreOn(dynalite.endpoint, TABLE);
  const deps: RecordStepDeps = {
    store,
    // Never called: the step reads and writes the record only.
    artifacts: new S3Artifacts(new S3Client({ region: 'us-east-1' }), 'b'),
    clock: () => new Date(),
    config: stepConfig(TABLE),
  };
  handler = createHandler(deps);
});
afterAll(async () => dynalite.close());

async function warnedRun(replacement: Replacement): Promise<string> {
  sequence += 1;
  const now = new Date().toISOString();
  const record: RunRecord = {
    runId: `r-await-${sequence}`, owner: 'arn:aws:iam::123456789012:user/alice', spec, specHash: 'h', status: 'PROVISIONING',
    createdAt: now, updatedAt: now, costUsd: 0, interruptions: 1, userFailures: 0,
    attempts: [{ attempt: 1, instanceId: 'i-0old', spot: true, startedAt: now, endedAt: now, endReason: 'SPOT_INTERRUPTED', replacement }],
  };
  await store.create(record);
  return record.runId;
}

describe('AwaitReplacement', () => {
  it('stores the token while the replacement is still being prepared', async () => {
    const runId = await warnedRun({ ...REPLACEMENT, readyAt: '2026-12-02T06:01:00.000Z' });

    await handler({ runId, attempt: 2, instanceId: REPLACEMENT.instanceId, taskToken: 'wait-1' }, context);

    expect((await store.get(runId))?.replacementToken).toBe('wait-1');
  });

  it.each([
    ['ready with its data', { dataReadyAt: '2026-12-02T06:02:00.000Z' }],
    ['given up', { releasedAt: '2026-12-02T06:02:00.000Z' }],
  ])('fails with Replacement.Settled when the replacement is %s already, storing nothing', async (_case, mark) => {
    const runId = await warnedRun({ ...REPLACEMENT, ...mark });

    const waited = handler({ runId, attempt: 2, instanceId: REPLACEMENT.instanceId, taskToken: 'wait-2' }, context);

    await expect(waited).rejects.toMatchObject({ name: 'Replacement.Settled' });
    expect((await store.get(runId))?.replacementToken).toBeUndefined();
  });
});
