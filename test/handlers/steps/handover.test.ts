import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalCompute } from '../../../local/compute';
import { DynamoAttemptSignals } from '../../../shared/adapters/dynamo-attempt-signals';
import { runsDocumentClient, type DynamoRunStore } from '../../../shared/adapters/dynamo-run-store';
import { S3Artifacts } from '../../../shared/adapters/s3-artifacts';
import { checkpointNowCommand } from '../../../shared/agent/commands';
import type { RunRecord } from '../../../shared/domain/run-record';
import { parseRunSpec } from '../../../shared/domain/run-spec';
import type { Artifacts } from '../../../shared/ports/artifacts';
import { prepareReplacement, type PrepareReplacementDeps, type PrepareResult } from '../../../shared/usecases/prepare-replacement';
import { launchRequestFor } from '../../../shared/usecases/provision-instance';
import { dynamoClient, runStoreOn, stepConfig } from '../../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../../support/dynalite';

/**
 * The rebalance handover (docs/recovery.md): with `recovery.preProvisionOnRebalance` and without
 * `checkpointOnRebalance`, prepare-replacement launches and prepares the next attempt's instance
 * while the attempt trains on, and once the replacement is ready asks the attempt, once, for its
 * checkpoint. Over dynalite and local instances; every command sent is recorded.
 */
const TABLE = 'runs';
const REBALANCE = 'EC2 Instance Rebalance Recommendation';
const WARNING = 'EC2 Spot Instance Interruption Warning';

class RecordingCompute extends LocalCompute {
  readonly sent: { instanceId: string; script: string; comment?: string }[] = [];
  override async sendCommand(instanceId: string, script: string, options: { timeoutSeconds?: number; comment?: string } = {}): Promise<string> {
    this.sent.push({ instanceId, script, comment: options.comment });
    return super.sendCommand(instanceId, script, options);
  }
}

let dynalite: RunningDynalite;
let store: DynamoRunStore;
let signals: DynamoAttemptSignals;
let root: string;
let compute: RecordingCompute;
let deps: PrepareReplacementDeps;
let sequence = 0;

beforeAll(async () => {
  dynalite = await startDynalite();
  store = await runStoreOn(dynalite.endpoint, TABLE);
  signals = new DynamoAttemptSignals(runsDocumentClient(dynamoClient(dynalite.endpoint)), TABLE);
  root = await mkdtemp(join(tmpdir(), 'runctl-handover-'));
  compute = new RecordingCompute({ root, bootMs: 0, terminateGraceMs: 200 });
  deps = {
    store,
    compute,
    signals,
    artifacts: Object.assign(new S3Artifacts(new S3Client({ region: 'us-east-1' }), 'b'), { latestCheckpoint: async () => undefined }) satisfies Artifacts,
    clock: () => new Date(),
    config: { ...stepConfig(TABLE), controlEndpoint: 'https://abc123.execute-api.us-east-1.amazonaws.com' },
    tasks: { succeedTask: async () => true, heartbeatTask: async () => true },
  };
});
afterEach(async () => {
  compute.sent.length = 0;
  for (const instance of await compute.listTaggedInstances()) await compute.terminate(instance.instanceId);
});
afterAll(async () => {
  await dynalite.close();
  await rm(root, { recursive: true, force: true });
});

/** A run training attempt 1 on a local instance; the recommendation marked as the rebalance handler marks it. */
async function trainingRun(recovery: { checkpointOnRebalance?: boolean; preProvisionOnRebalance?: boolean }): Promise<{ runId: string; instanceId: string }> {
  sequence += 1;
  const runId = `r-handover-${sequence}`;
  const now = new Date().toISOString();
  const spec = parseRunSpec({
    name: 'resnet',
    code: { bundle: 's3://runctl-code/bundles/abc.tar.gz', entrypoint: 'train.py' },
    instance: { types: ['g5.xlarge', 'g6.xlarge'], spot: true },
    recovery,
  });
  const record: RunRecord = {
    runId, owner: 'arn:aws:iam::123456789012:user/alice', spec, specHash: 'h', status: 'TRAINING',
    createdAt: now, updatedAt: now, costUsd: 0, interruptions: 0, userFailures: 0, attempts: [],
  };
  const launched = await compute.launch(launchRequestFor(record, 1, { instanceTypes: ['g5.xlarge'], availabilityZones: [], spot: true }));
  await store.create({
    ...record,
    attempts: [{ attempt: 1, instanceId: launched.instanceId, instanceType: launched.instanceType, availabilityZone: launched.availabilityZone, spot: true, startedAt: now }],
  });
  return { runId, instanceId: launched.instanceId };
}

/** prepare-replacement's steps as its machine runs them, from the launch to the end of the copy. */
async function prepare(runId: string, instanceId: string, trigger: string): Promise<PrepareResult[]> {
  const launched = await prepareReplacement({ action: 'launch', runId, attempt: 1, instanceId, trigger }, deps);
  return launched.stop ? [launched] : [launched, ...(await readyAndCopy(runId))];
}

/** The readiness checks until the replacement is online, then the copy. */
async function readyAndCopy(runId: string): Promise<PrepareResult[]> {
  const results: PrepareResult[] = [];
  for (let checks = 0; ; ) {
    const checked = await prepareReplacement({ action: 'check', runId, attempt: 1, checks }, deps);
    results.push(checked);
    if (checked.stop || checked.ready === true) break;
    checks = checked.checks ?? checks + 1;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  results.push(await prepareReplacement({ action: 'copy', runId, attempt: 1 }, deps));
  return results;
}

async function stored(runId: string): Promise<RunRecord> {
  const record = await store.get(runId);
  if (record === undefined) throw new Error(`no record for ${runId}`);
  return record;
}

describe('the rebalance handover', () => {
  it('prepares the replacement while the attempt trains on, then asks the attempt once for its checkpoint', async () => {
    const { runId, instanceId } = await trainingRun({ preProvisionOnRebalance: true });
    expect(await signals.markRebalanceHandover({ runId, attempt: 1, instanceId, at: new Date().toISOString() })).toBe(true);

    const results = await prepare(runId, instanceId, REBALANCE);
    const replacement = (await stored(runId)).attempts[0]?.replacement;

    expect(replacement).toMatchObject({ attempt: 2, trigger: 'rebalance', dataReadyAt: expect.any(String) });
    expect(results.at(-1)).toMatchObject({ stop: true, done: true, reason: `no data to copy; asked attempt 1 on ${instanceId} for its checkpoint to hand over` });
    // Nothing went to the training instance before the replacement was ready; then one "checkpoint now".
    expect(compute.sent).toEqual([{ instanceId, script: checkpointNowCommand(runId, 1, 'handover'), comment: `runctl checkpoint ${runId} attempt 1: handover to ${replacement?.instanceId}` }]);
    const record = await stored(runId);
    expect(record.status).toBe('TRAINING');
    expect(record.statusReason).toBe(`Replacement ${replacement?.instanceId} is ready with the run's data: checkpointing attempt 1 to hand over to it`);

    // A retried step asks no second time.
    expect(await prepareReplacement({ action: 'copy', runId, attempt: 1 }, deps)).toMatchObject({ stop: true, reason: 'data already copied' });
    expect(compute.sent).toHaveLength(1);
  });

  it('asks nothing when a spot warning came during the preparation: the warning has its own checkpoint', async () => {
    const { runId, instanceId } = await trainingRun({ preProvisionOnRebalance: true });
    await signals.markRebalanceHandover({ runId, attempt: 1, instanceId, at: new Date().toISOString() });
    expect(await prepareReplacement({ action: 'launch', runId, attempt: 1, instanceId, trigger: REBALANCE }, deps)).toMatchObject({ stop: false });

    const marked = await signals.markSpotInterrupted({ runId, attempt: 1, instanceId, owner: 'arn:aws:iam::123456789012:user/alice', noticedAt: new Date().toISOString(), action: 'terminate' });
    expect(marked).toBe(true);
    // The warning's own prepare-replacement execution leaves the replacement to the first one.
    expect(await prepareReplacement({ action: 'launch', runId, attempt: 1, instanceId, trigger: WARNING }, deps)).toMatchObject({
      stop: true,
      reason: 'the replacement launched on the rebalance is being prepared by its own execution',
    });
    const copied = (await readyAndCopy(runId)).at(-1);

    expect(copied).toMatchObject({ stop: true, done: true, reason: 'no data to copy' });
    expect(compute.sent).toEqual([]);
    expect((await compute.launchedFor(runId)).filter((i) => i.attempt === 2)).toHaveLength(1);
  });

  it('asks nothing when the spec also checkpoints on the recommendation (the early checkpoint already went)', async () => {
    const { runId, instanceId } = await trainingRun({ checkpointOnRebalance: true, preProvisionOnRebalance: true });
    await signals.markRebalanceCheckpoint({ runId, attempt: 1, instanceId, at: new Date().toISOString() });

    const results = await prepare(runId, instanceId, REBALANCE);

    expect(results.at(-1)).toMatchObject({ stop: true, done: true, reason: 'no data to copy' });
    expect(compute.sent).toEqual([]);
  });

  it('launches nothing on a recommendation when the spec does not pre-provision', async () => {
    const { runId, instanceId } = await trainingRun({});
    expect(await signals.markRebalanceHandover({ runId, attempt: 1, instanceId, at: new Date().toISOString() })).toBe(false);
    const results = await prepare(runId, instanceId, REBALANCE);

    expect(results).toEqual([{ stop: true, reason: 'recovery.preProvisionOnRebalance is off' }]);
    expect((await compute.launchedFor(runId)).filter((i) => i.attempt === 2)).toEqual([]);
  });
});
