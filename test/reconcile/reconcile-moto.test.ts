/**
 * The reconciler against moto_server: EC2 instances, tags, volumes and snapshots and the DynamoDB
 * runs table speak the real wire protocols; only Step Functions is mocked (moto cannot hold a task
 * token). moto keeps one state per region, and the other suites that launch instances on the same
 * moto_server use us-east-1: this file works in its own region, so its passes never see (or
 * terminate) their instances. (moto 5.2 does not separate accounts by access key.)
 */
import { randomInt } from 'node:crypto';
import {
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient, SendTaskFailureCommand } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoRunStore, runsDocumentClient } from '../../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../../shared/adapters/ec2-compute';
import { Ec2Pricing, Ec2StorageInventory } from '../../shared/adapters/ec2-pricing';
import { SfnExecutions } from '../../shared/adapters/sfn-executions';
import { RequestCounter } from '../../shared/composition/reconcile';
import { reconcile, type ReconcileDeps } from '../../shared/usecases/reconcile';
import { createRunsTable } from '../support/aws-clients';
import { TEST_STACK } from '../support/stack';
import { attemptOn, runRecord } from './fixtures';

const account = `4${String(randomInt(10_000_000_000, 99_999_999_999))}`;
const REGION = 'eu-west-1';
const config = () => ({
  endpoint: inject('motoEndpoint'),
  region: REGION,
  credentials: { accessKeyId: account, secretAccessKey: 'test' },
  maxAttempts: 1,
});

const ec2 = new EC2Client(config());
const ssm = new SSMClient(config());
const dynamo = new DynamoDBClient(config());
const sfnClient = new SFNClient({ region: 'us-east-1' });
const sfn = mockClient(sfnClient);
const counter = new RequestCounter();
ec2.middlewareStack.add(counter.middleware, counter.options);
ssm.middlewareStack.add(counter.middleware, counter.options);
dynamo.middlewareStack.add(counter.middleware, counter.options);

let ami = '';
let table = '';

/** Launches an instance tagged as runctl tags its own, for `stack` (null: without a stack tag). */
async function launch(runId: string, attempt: number, stack: string | null = TEST_STACK): Promise<string> {
  const tags = [
    { Key: 'runctl:run', Value: runId },
    { Key: 'runctl:attempt', Value: String(attempt) },
    ...(stack === null ? [] : [{ Key: 'runctl:stack', Value: stack }]),
  ];
  const output = await ec2.send(
    new RunInstancesCommand({
      ImageId: ami,
      InstanceType: 'g5.xlarge',
      MinCount: 1,
      MaxCount: 1,
      TagSpecifications: [{ ResourceType: 'instance', Tags: tags }],
    }),
  );
  const id = output.Instances?.[0]?.InstanceId;
  if (id === undefined) throw new Error('moto launched nothing');
  return id;
}

async function stateOf(instanceId: string): Promise<string | undefined> {
  const output = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  return output.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}

/** Deps whose clock stands `offsetMinutes` after the real time (moto stamps launches with the real time). */
function depsAt(offsetMinutes: number): ReconcileDeps {
  const retry = { attempts: 1, baseMs: 1 };
  return {
    store: new DynamoRunStore(runsDocumentClient(dynamo), table),
    compute: new Ec2Compute({ ec2, ssm, stack: TEST_STACK, throttleRetry: retry }),
    executions: new SfnExecutions(sfnClient, 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-moto'),
    pricing: new Ec2Pricing(ec2, REGION, { throttleRetry: retry }),
    storage: new Ec2StorageInventory(ec2, { stack: TEST_STACK, throttleRetry: retry }),
    clock: () => new Date(Date.now() + offsetMinutes * 60_000),
    awsRequests: () => counter.count,
  };
}

beforeAll(async () => {
  const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
  ami = images.Images?.find((i) => i.Architecture === 'x86_64')?.ImageId ?? '';
  expect(ami).toMatch(/^ami-/);
  table = `reconcile-moto-${Date.now()}`;
  await createRunsTable(dynamo, table);
  sfn.on(SendTaskFailureCommand).resolves({});
});

describe('reconcile on moto_server', () => {
  it('spares a fresh orphan, then terminates it after the grace period, once across two overlapping passes', async () => {
    const orphan = await launch('r-00000000000000aa', 1);

    const early = await reconcile(depsAt(1));
    expect(early.spared.map((s) => s.instanceId)).toContain(orphan);
    expect(await stateOf(orphan)).toBe('running');

    const [a, b] = await Promise.all([reconcile(depsAt(20)), reconcile(depsAt(20))]);
    expect(await stateOf(orphan)).toBe('terminated');
    expect([...a.terminated, ...b.terminated].every((t) => t.instanceId === orphan)).toBe(true);
    expect([...a.terminated, ...b.terminated].length).toBeGreaterThanOrEqual(1);

    const after = await reconcile(depsAt(25));
    expect(after.terminated).toEqual([]);
  });

  it('leaves the instance of a provisioning attempt and of a training attempt alone; fails the task of a lost one once, however many passes', async () => {
    const deps = depsAt(60);
    const provisioning = runRecord({ status: 'PROVISIONING', now: deps.clock() });
    await deps.store.create(provisioning);
    const provisioningInstance = await launch(provisioning.runId, 1);

    const training = runRecord({ status: 'TRAINING', now: deps.clock(), taskToken: 'token-ok', attempts: [attemptOn('i-placeholder', 30, {}, deps.clock())] });
    const trainingInstance = await launch(training.runId, 1);
    training.attempts = [attemptOn(trainingInstance, 30, {}, deps.clock())];
    await deps.store.create(training);

    const lost = runRecord({ status: 'TRAINING', now: deps.clock(), taskToken: 'token-lost', attempts: [attemptOn('i-0123456789abcdef0', 30, {}, deps.clock())] });
    await deps.store.create(lost);

    // Two passes one after the other: the second finds the task already failed. (Two passes at
    // once race on a conditional write, which moto's DynamoDB does not serialize.)
    const a = await reconcile(deps);
    const b = await reconcile(deps);

    expect(await stateOf(provisioningInstance)).toBe('running');
    expect(await stateOf(trainingInstance)).toBe('running');
    expect(sfn.commandCalls(SendTaskFailureCommand).map((c) => c.args[0].input)).toMatchObject([{ taskToken: 'token-lost', error: 'Instance.Lost' }]);
    expect([...a.lostInstances, ...b.lostInstances].filter((l) => l.failed).map((l) => l.runId)).toEqual([lost.runId]);
    expect((await deps.store.get(training.runId))?.taskToken).toBe('token-ok');
    // Bounded: a pass over a handful of runs costs a handful of requests (12 status queries among them).
    expect(a.awsRequests).toBeGreaterThanOrEqual(15);
    expect(a.awsRequests).toBeLessThan(60);
  });

  it('reports an unattached volume and a snapshot of a run that is gone, of this stack only', async () => {
    const storage = async (stack: string) => {
      const volume = await ec2.send(
        new CreateVolumeCommand({
          AvailabilityZone: `${REGION}a`,
          Size: 50,
          TagSpecifications: [
            { ResourceType: 'volume', Tags: [{ Key: 'runctl:volume', Value: 'run:r-00000000000000bb' }, { Key: 'runctl:stack', Value: stack }] },
          ],
        }),
      );
      const snapshot = await ec2.send(
        new CreateSnapshotCommand({
          VolumeId: volume.VolumeId,
          TagSpecifications: [
            { ResourceType: 'snapshot', Tags: [{ Key: 'runctl:run', Value: 'r-00000000000000bb' }, { Key: 'runctl:stack', Value: stack }] },
          ],
        }),
      );
      return { volumeId: volume.VolumeId, snapshotId: snapshot.SnapshotId };
    };
    const ours = await storage(TEST_STACK);
    const theirs = await storage('runctl-prod');

    const report = await reconcile(depsAt(120));

    expect(report.strayVolumes.map((v) => v.volumeId)).toContain(ours.volumeId);
    expect(report.straySnapshots.map((s) => s.snapshotId)).toContain(ours.snapshotId);
    expect(report.strayVolumes.map((v) => v.volumeId)).not.toContain(theirs.volumeId);
    expect(report.straySnapshots.map((s) => s.snapshotId)).not.toContain(theirs.snapshotId);
  });

  it("leaves another stack's instance and an instance without a stack tag running, and terminates this stack's orphan", async () => {
    const ours = await launch('r-00000000000000cc', 1);
    const otherStage = await launch('r-00000000000000dd', 1, 'runctl-prod');
    const untagged = await launch('r-00000000000000ee', 1, null);

    const report = await reconcile(depsAt(180));

    expect(await stateOf(ours)).toBe('terminated');
    expect(await stateOf(otherStage)).toBe('running');
    expect(await stateOf(untagged)).toBe('running');
    expect(report.terminated.map((t) => t.instanceId)).toEqual([ours]);
    expect(report.spared).toEqual([]);
  });
});
