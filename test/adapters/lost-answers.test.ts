import { readFileSync } from 'node:fs';
import { DescribeTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as createSpotWarning } from '../../functions/events/spot-warning';
import { DynamoAttemptSignals } from '../../shared/adapters/dynamo-attempt-signals';
import { DynamoRunStore, runsDocumentClient } from '../../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../../shared/adapters/ec2-compute';
import { Ec2InstanceTags } from '../../shared/adapters/ec2-instance-tags';
import type { RunRecord } from '../../shared/domain/run-record';
import { RunSpecSchema } from '../../shared/domain/run-spec';
import type { RunStatus } from '../../shared/domain/run-status';
import { StatusConflictError, ThrottledError } from '../../shared/errors';
import { ALICE, lambdaContext } from '../support/api-events';
import { createRunsTable, dynamoClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { startLossyProxy, type LossyProxy } from '../support/lossy-proxy';
import { TEST_STACK } from '../support/stack';

/**
 * Lost answers: dynalite carries out the call, the proxy in front of it drops the reply, and the
 * SDK retries the same request — which then meets a condition that its own first try made false.
 */

const INSTANCE = 'i-0b3c5a9e1f2d4c6a8';
const UPDATE_ITEM = 'DynamoDB_20120810.UpdateItem';
const GET_ITEM = 'DynamoDB_20120810.GetItem';

let runs = 0;
function run(status: RunStatus): RunRecord {
  runs += 1;
  const at = '2026-11-25T12:00:00.000Z';
  return {
    runId: `r-lost-${runs}`,
    owner: ALICE,
    spec: RunSpecSchema.parse({
      name: 'resnet',
      code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' },
      instance: { types: 'g5.xlarge' },
    }),
    specHash: 'hash',
    status,
    createdAt: at,
    updatedAt: at,
    attempts: [{ attempt: 1, instanceId: INSTANCE, instanceType: 'g5.xlarge', spot: true, startedAt: at }],
    costUsd: 0,
    interruptions: 0,
    userFailures: 0,
  };
}

describe('lost answers', () => {
  let dynalite: RunningDynalite;
  let proxy: LossyProxy;
  let table: string;
  /** Writes and reads straight to dynalite: the test's view of what is stored. */
  let direct: DynamoRunStore;
  /** The store under test, whose every call goes through the lossy proxy. */
  let lossy: DynamoRunStore;
  let signals: DynamoAttemptSignals;

  beforeAll(async () => {
    dynalite = await startDynalite();
    proxy = await startLossyProxy(dynalite.endpoint);
    table = `lost-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    direct = new DynamoRunStore(runsDocumentClient(dynamoClient(dynalite.endpoint)), table);
    // The SDK's standard retry (3 tries) sends the very same request again after a lost answer.
    const documentClient = runsDocumentClient(dynamoClient(proxy.endpoint));
    lossy = new DynamoRunStore(documentClient, table);
    signals = new DynamoAttemptSignals(documentClient, table);
  });
  afterAll(async () => {
    await proxy.close();
    await dynalite.close();
  });

  describe('a status transition', () => {
    it('PROVISIONING → STARTING whose answer is lost: the retry fails the condition, and the store still answers success', async () => {
      const record = run('PROVISIONING');
      await direct.create(record);
      proxy.dropAnswers((target, body) => target === UPDATE_ITEM && body.includes(record.runId), 1);

      const moved = await lossy.transition(record.runId, 'PROVISIONING', 'STARTING', { statusReason: 'Instance is starting' });

      expect(proxy.dropped).toContain(UPDATE_ITEM);
      expect(moved).toMatchObject({ runId: record.runId, status: 'STARTING', statusReason: 'Instance is starting' });
      expect((await direct.get(record.runId))?.status).toBe('STARTING');
    });

    it('still reports a conflict that another writer caused', async () => {
      const record = run('PROVISIONING');
      await direct.create(record);
      await direct.transition(record.runId, 'PROVISIONING', 'STARTING');

      const error = await lossy.transition(record.runId, 'PROVISIONING', 'STARTING').catch((e: unknown) => e);

      expect(error).toBeInstanceOf(StatusConflictError);
      expect(error).toMatchObject({ name: 'Run.StatusConflict', actual: 'STARTING' });
    });

    it('a transition whose twin already moved the run is not mistaken for its own', async () => {
      const record = run('TRAINING');
      await direct.create(record);
      // The first writer's answer is lost; a second writer's identical transition then meets its write.
      proxy.dropAnswers((target, body) => target === UPDATE_ITEM && body.includes(record.runId), 1);
      await lossy.transition(record.runId, 'TRAINING', 'CHECKPOINTING');

      await expect(lossy.transition(record.runId, 'TRAINING', 'CHECKPOINTING')).rejects.toBeInstanceOf(StatusConflictError);
    });
  });

  describe('a connection reset on every try', () => {
    it('is Aws.Throttled (retried by the state machine), not Aws.CallFailed', async () => {
      const record = run('TRAINING');
      await direct.create(record);
      proxy.dropAnswers((target, body) => target === GET_ITEM && body.includes(record.runId), 10);

      const error = await lossy.get(record.runId).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ThrottledError);
      expect(error).toMatchObject({ name: 'Aws.Throttled', message: expect.stringMatching(/socket hang up|ECONNRESET/) });
    });
  });

  describe('the spot-warning write', () => {
    const ec2Client = new EC2Client({ region: 'us-east-1' });
    const ec2 = mockClient(ec2Client);
    const ssmClient = new SSMClient({ region: 'us-east-1' });
    const ssm = mockClient(ssmClient);
    const instances = new Ec2InstanceTags(ec2Client, TEST_STACK);
    const compute = new Ec2Compute({ ec2: ec2Client, ssm: ssmClient, stack: TEST_STACK, throttleRetry: { attempts: 1, baseMs: 1 } });
    const warning = (): Record<string, unknown> =>
      JSON.parse(readFileSync(new URL('../fixtures/events/spot-interruption-warning.json', import.meta.url), 'utf8'));

    beforeEach(() => {
      ec2.reset();
      ssm.reset();
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
    });

    function tagged(record: RunRecord): void {
      const tags = [
        { Key: 'runctl:run', Value: record.runId },
        { Key: 'runctl:attempt', Value: '1' },
        { Key: 'runctl:stack', Value: TEST_STACK },
        { Key: 'runctl:owner', Value: record.owner },
      ];
      ec2.on(DescribeTagsCommand).resolves({ Tags: tags.map((t) => ({ ...t, ResourceId: INSTANCE, ResourceType: 'instance' })) });
    }

    it('lands with its answer lost: the handler still sends "checkpoint now"', async () => {
      const record = run('TRAINING');
      await direct.create(record);
      tagged(record);
      proxy.dropAnswers((target, body) => target === UPDATE_ITEM && body.includes(record.runId), 1);

      const outcome = await createSpotWarning(() => ({ instances, signals, store: lossy, compute }))(warning(), lambdaContext());

      expect(outcome).toMatchObject({ action: 'checkpoint-requested', runId: record.runId, attempt: 1, commandId: 'cmd-1' });
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(1);
      const stored = await direct.get(record.runId);
      expect(stored?.status).toBe('CHECKPOINTING');
      expect(stored?.attempts[0]?.endReason).toBe('SPOT_INTERRUPTED');
    });

    it('a second delivery of the warning is still a duplicate: one command in all', async () => {
      const record = run('TRAINING');
      await direct.create(record);
      tagged(record);
      const handler = createSpotWarning(() => ({ instances, signals, store: lossy, compute }));
      proxy.dropAnswers((target, body) => target === UPDATE_ITEM && body.includes(record.runId), 1);

      await handler(warning(), lambdaContext());
      const again = await handler(warning(), lambdaContext());

      expect(again.action === 'ignored' && again.reason).toMatch(/^duplicate warning/);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(1);
    });
  });
});
