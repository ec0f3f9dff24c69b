import {
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeSpotPriceHistoryCommand,
  DescribeVolumesCommand,
  EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { startLocalServices } from '../local/services';
import { DynamoRunStore, runsDocumentClient } from '../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../shared/adapters/ec2-compute';
import { Ec2Pricing, Ec2StorageInventory } from '../shared/adapters/ec2-pricing';
import { SfnExecutions } from '../shared/adapters/sfn-executions';
import { RequestCounter } from '../shared/composition/reconcile';
import type { RunRecord } from '../shared/domain/run-record';
import { parseRunSpec } from '../shared/domain/run-spec';
import { reconcile } from '../shared/usecases/reconcile';

const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-bench-train-run';
const EXECUTION_PREFIX = 'arn:aws:states:us-east-1:123456789012:execution:runctl-bench-train-run:';

/**
 * The reconciler's AWS calls for one pass over N training runs: the real use case and adapters
 * over dynalite (the runs table) and mocked EC2 (every run's instance running and tagged, spot
 * prices for its type and AZ), SSM and Step Functions. The pass is what runs every five minutes
 * whatever happens, so its calls must grow with the distinct (type, AZ) pairs and the pages of
 * runs, not with each run.
 */

export interface ReconcileFigure {
  runs: number;
  awsRequests: number;
  byService: { dynamodb: number; ec2: number; ssm: number; sfn: number };
  byCommand: Record<string, number>;
  costsUpdated: number;
  terminated: number;
  errors: number;
  ms: number;
}

const TYPES = ['g5.xlarge', 'g6.xlarge'];
const ZONES = ['us-east-1a', 'us-east-1b'];

/** Two passes over `runs` training runs: the first writes every run's cost, the second is the steady state. */
export async function measureReconcile(root: string, runs: number): Promise<ReconcileFigure[]> {
  const services = await startLocalServices({ root, persist: false });
  try {
    const counter = new RequestCounter();
    const byCommand: Record<string, number> = {};
    const dynamo = new DynamoDBClient(services.clientConfig.dynamodb);
    const store = new DynamoRunStore(runsDocumentClient(dynamo), services.table);
    const now = new Date();
    const startedAt = new Date(now.getTime() - 3 * 3600_000);
    const instances: Instance[] = [];
    const executionArns: string[] = [];
    for (let i = 0; i < runs; i += 1) {
      const runId = `r-bench${String(i).padStart(9, '0')}`;
      const instanceId = `i-0bench${String(i).padStart(10, '0')}`;
      const instanceType = TYPES[i % TYPES.length] ?? 'g5.xlarge';
      const availabilityZone = ZONES[Math.floor(i / TYPES.length) % ZONES.length] ?? 'us-east-1a';
      const record: RunRecord = {
        runId,
        owner: 'arn:aws:iam::123456789012:user/bench',
        spec: parseRunSpec({ name: 'bench', code: { bundle: 's3://runctl-bench/bundles/a.tar.gz', entrypoint: 'train.py' }, instance: { types: [instanceType] } }),
        specHash: 'hash',
        status: 'TRAINING',
        createdAt: startedAt.toISOString(),
        updatedAt: startedAt.toISOString(),
        attempts: [{ attempt: 1, instanceId, instanceType, availabilityZone, spot: true, startedAt: startedAt.toISOString() }],
        taskToken: `token-${runId}`,
        taskTokenAttempt: 1,
        executionArn: `${EXECUTION_PREFIX}${runId}`,
        costUsd: 0,
        interruptions: 0,
        userFailures: 0,
      };
      await store.create(record);
      executionArns.push(`${EXECUTION_PREFIX}${runId}`);
      instances.push({
        InstanceId: instanceId,
        InstanceType: isBenchType(instanceType) ? instanceType : undefined,
        InstanceLifecycle: 'spot',
        LaunchTime: startedAt,
        State: { Name: 'running', Code: 16 },
        Placement: { AvailabilityZone: availabilityZone },
        Tags: [
          { Key: 'runctl:run', Value: runId },
          { Key: 'runctl:attempt', Value: '1' },
        ],
      });
    }
    // Counted from here: the seeding above is not part of the pass.
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        counter.count += 1;
        const name = `dynamodb:${context.commandName ?? 'unknown'}`;
        byCommand[name] = (byCommand[name] ?? 0) + 1;
        return next(args);
      },
      { step: 'initialize', name: 'benchCountDynamo' },
    );
    const ec2Client = new EC2Client({ region: 'us-east-1' });
    const ec2 = mockClient(ec2Client);
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: instances }] });
    ec2.on(DescribeSpotPriceHistoryCommand).callsFake((input: { InstanceTypes?: string[]; AvailabilityZone?: string }) => ({
      SpotPriceHistory: [
        {
          InstanceType: input.InstanceTypes?.[0],
          AvailabilityZone: input.AvailabilityZone,
          ProductDescription: 'Linux/UNIX',
          SpotPrice: '0.4',
          Timestamp: new Date(startedAt.getTime() - 3600_000),
        },
      ],
    }));
    ec2.on(DescribeVolumesCommand).resolves({ Volumes: [] });
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    const ssmClient = new SSMClient({ region: 'us-east-1' });
    const ssm = mockClient(ssmClient);
    const sfnClient = new SFNClient({ region: 'us-east-1' });
    const sfn = mockClient(sfnClient);
    sfn.on(ListExecutionsCommand).resolves({
      executions: executionArns.map((executionArn) => ({ executionArn, stateMachineArn: STATE_MACHINE_ARN, name: executionArn, status: 'RUNNING', startDate: startedAt })),
    });
    const retry = { attempts: 1, baseMs: 1 };
    const deps = {
      store,
      compute: new Ec2Compute({ ec2: ec2Client, ssm: ssmClient, stack: 'runctl-bench', throttleRetry: retry }),
      executions: new SfnExecutions(sfnClient, STATE_MACHINE_ARN),
      pricing: new Ec2Pricing(ec2Client, 'us-east-1', { throttleRetry: retry }),
      storage: new Ec2StorageInventory(ec2Client, { stack: 'runctl-bench', throttleRetry: retry }),
      clock: () => new Date(),
      awsRequests: () => counter.count + ec2.calls().length + ssm.calls().length + sfn.calls().length,
    };
    const figures: ReconcileFigure[] = [];
    for (let pass = 0; pass < 2; pass += 1) {
      counter.count = 0;
      for (const key of Object.keys(byCommand)) delete byCommand[key];
      ec2.resetHistory();
      ssm.resetHistory();
      sfn.resetHistory();
      const started = performance.now();
      const report = await reconcile(deps);
      const ms = performance.now() - started;
      for (const call of ec2.calls()) {
        const name = `ec2:${call.args[0].constructor.name.replace(/Command$/, '')}`;
        byCommand[name] = (byCommand[name] ?? 0) + 1;
      }
      figures.push({
        runs,
        awsRequests: report.awsRequests ?? 0,
        byService: { dynamodb: counter.count, ec2: ec2.calls().length, ssm: ssm.calls().length, sfn: sfn.calls().length },
        byCommand: { ...byCommand },
        costsUpdated: report.costsUpdated.length,
        terminated: report.terminated.length,
        errors: report.errors.length,
        ms,
      });
    }
    dynamo.destroy();
    return figures;
  } finally {
    await services.close();
  }
}

function isBenchType(type: string): type is 'g5.xlarge' | 'g6.xlarge' {
  return type === 'g5.xlarge' || type === 'g6.xlarge';
}
