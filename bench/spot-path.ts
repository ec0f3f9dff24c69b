import { DescribeTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SSMClient, SendCommandCommand } from '@aws-sdk/client-ssm';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { createHandler as createSpotWarning } from '../functions/events/spot-warning';
import { startLocalServices } from '../local/services';
import { DynamoAttemptSignals } from '../shared/adapters/dynamo-attempt-signals';
import { DynamoRunStore, runsDocumentClient } from '../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../shared/adapters/ec2-compute';
import { Ec2InstanceTags } from '../shared/adapters/ec2-instance-tags';
import type { RunRecord } from '../shared/domain/run-record';
import { parseRunSpec } from '../shared/domain/run-spec';
import { STACK_TAG } from '../shared/ports/stack-tag';

/** The stack the measured handler serves (its instances carry this `runctl:stack` tag). */
const BENCH_STACK = 'runctl-bench';

/**
 * AWS calls on the spot-warning path: the real spot-warning handler (its composition's
 * adapters) over dynalite for DynamoDB and mocked EC2 and SSM clients, every request counted by
 * service. DESIGN.md §9: warning → "checkpoint now" delivered in at most three AWS calls.
 */

export interface SpotPathCase {
  case: string;
  action: string;
  calls: { ec2: number; dynamodb: number; ssm: number };
  total: number;
}

const OWNER = 'arn:aws:iam::123456789012:user/bench';
const INSTANCE = 'i-0b3c5a9e1f2d4c6a8';

function warningEvent(instanceId: string) {
  return {
    version: '0',
    id: '1e5527d7-bb36-4607-3370-4164db56a40e',
    'detail-type': 'EC2 Spot Instance Interruption Warning',
    source: 'aws.ec2',
    account: '123456789012',
    time: '2026-11-25T14:02:11Z',
    region: 'us-east-1',
    resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, 'instance-action': 'terminate' },
  };
}

function context(): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'spot-warning',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:spot-warning',
    memoryLimitInMB: '256',
    awsRequestId: 'bench',
    logGroupName: '/aws/lambda/spot-warning',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function trainingRun(runId: string, status: RunRecord['status'] = 'TRAINING'): RunRecord {
  const at = new Date().toISOString();
  return {
    runId,
    owner: OWNER,
    spec: parseRunSpec({ name: 'bench', code: { bundle: 's3://runctl-bench/bundles/a.tar.gz', entrypoint: 'train.py' }, instance: { types: ['g5.xlarge'] } }),
    specHash: 'hash',
    status,
    createdAt: at,
    updatedAt: at,
    attempts: [{ attempt: 1, instanceId: INSTANCE, instanceType: 'g5.xlarge', spot: true, startedAt: at }],
    taskToken: `token-${runId}`,
    taskTokenAttempt: 1,
    costUsd: 0,
    interruptions: 0,
    userFailures: 0,
  };
}

export async function measureSpotPath(root: string): Promise<SpotPathCase[]> {
  const services = await startLocalServices({ root, persist: false });
  try {
    const dynamoCalls: string[] = [];
    const dynamo = new DynamoDBClient(services.clientConfig.dynamodb);
    dynamo.middlewareStack.add(
      (next, ctx) => async (args) => {
        dynamoCalls.push(ctx.commandName ?? 'unknown');
        return next(args);
      },
      { step: 'initialize', name: 'benchCountDynamo' },
    );
    const documentClient = runsDocumentClient(dynamo);
    const store = new DynamoRunStore(documentClient, services.table);
    const signals = new DynamoAttemptSignals(documentClient, services.table);
    const ec2Client = new EC2Client({ region: 'us-east-1' });
    const ssmClient = new SSMClient({ region: 'us-east-1' });
    const ec2 = mockClient(ec2Client);
    const ssm = mockClient(ssmClient);
    const instances = new Ec2InstanceTags(ec2Client, BENCH_STACK);
    const compute = new Ec2Compute({ ec2: ec2Client, ssm: ssmClient, stack: BENCH_STACK, throttleRetry: { attempts: 1, baseMs: 1 } });
    const handler = createSpotWarning(() => ({ instances, signals, store, compute }));

    const tags = (runId: string, owner: boolean) => [
      { Key: 'runctl:run', Value: runId, ResourceId: INSTANCE, ResourceType: 'instance' as const },
      { Key: 'runctl:attempt', Value: '1', ResourceId: INSTANCE, ResourceType: 'instance' as const },
      { Key: STACK_TAG, Value: BENCH_STACK, ResourceId: INSTANCE, ResourceType: 'instance' as const },
      ...(owner ? [{ Key: 'runctl:owner', Value: OWNER, ResourceId: INSTANCE, ResourceType: 'instance' as const }] : []),
    ];
    const cases: SpotPathCase[] = [];
    const measure = async (name: string, setup: () => Promise<void>) => {
      ec2.reset();
      ssm.reset();
      ec2.on(DescribeTagsCommand).resolves({ Tags: [] });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
      await setup();
      dynamoCalls.length = 0;
      const outcome = await handler(warningEvent(INSTANCE), context());
      const calls = { ec2: ec2.calls().length, dynamodb: dynamoCalls.length, ssm: ssm.calls().length };
      cases.push({ case: name, action: String(outcome.action), calls, total: calls.ec2 + calls.dynamodb + calls.ssm });
    };

    await measure('warning for a training run', async () => {
      await store.create(trainingRun('r-bench-spot-1'));
      ec2.on(DescribeTagsCommand).resolves({ Tags: tags('r-bench-spot-1', true) });
    });
    await measure('the same warning again (duplicate)', async () => {
      ec2.on(DescribeTagsCommand).resolves({ Tags: tags('r-bench-spot-1', true) });
    });
    await measure('instance without the owner tag', async () => {
      await store.create(trainingRun('r-bench-spot-2'));
      ec2.on(DescribeTagsCommand).resolves({ Tags: tags('r-bench-spot-2', false) });
    });
    await measure('instance runctl does not own', async () => undefined);
    await measure('late warning (run already SUCCEEDED)', async () => {
      await store.create(trainingRun('r-bench-spot-3', 'SUCCEEDED'));
      ec2.on(DescribeTagsCommand).resolves({ Tags: tags('r-bench-spot-3', true) });
    });
    dynamo.destroy();
    return cases;
  } finally {
    await services.close();
  }
}
