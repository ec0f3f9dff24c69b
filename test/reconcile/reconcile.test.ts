/**
 * The reconciler over aws-sdk-client-mock scenarios: the real EC2, SSM and Step Functions adapters
 * on mocked clients, and the real run store on dynalite (its conditional writes are what make two
 * overlapping passes do each piece of work once).
 */
import {
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeSpotPriceHistoryCommand,
  DescribeVolumesCommand,
  EC2Client,
  TerminateInstancesCommand,
  type Filter,
  type Instance,
} from '@aws-sdk/client-ec2';
import { DescribeExecutionCommand, ExecutionDoesNotExist, ListExecutionsCommand, SFNClient, SendTaskFailureCommand, TaskDoesNotExist } from '@aws-sdk/client-sfn';
import { SSMClient, SendCommandCommand } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../../shared/adapters/ec2-compute';
import { Ec2Pricing, Ec2StorageInventory } from '../../shared/adapters/ec2-pricing';
import { SfnExecutions } from '../../shared/adapters/sfn-executions';
import { isBudgetStop } from '../../shared/domain/cost';
import type { RunRecord } from '../../shared/domain/run-record';
import { DEFAULT_RECONCILE_OPTIONS, reconcile, type ReconcileDeps } from '../../shared/usecases/reconcile';
import { createHandler } from '../../functions/events/reconcile';
import { lambdaContext } from '../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { TEST_STACK } from '../support/stack';
import { NOW, attemptOn, minutesAgo, runRecord } from './fixtures';

const STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-train-run';

const ec2Client = new EC2Client({ region: 'us-east-1' });
const ssmClient = new SSMClient({ region: 'us-east-1' });
const sfnClient = new SFNClient({ region: 'us-east-1' });
const ec2 = mockClient(ec2Client);
const ssm = mockClient(ssmClient);
const sfn = mockClient(sfnClient);

/** An instance of this stack, or of `stack` (null: one launched without a stack tag). */
function instance(id: string, runId: string, attempt: number, launchedMinutesAgo: number, state = 'running', stack: string | null = TEST_STACK): Instance {
  return {
    InstanceId: id,
    InstanceType: 'g5.xlarge',
    State: { Name: state === 'running' ? 'running' : 'stopped' },
    LaunchTime: new Date(minutesAgo(launchedMinutesAgo)),
    Tags: [
      { Key: 'runctl:run', Value: runId },
      { Key: 'runctl:attempt', Value: String(attempt) },
      ...(stack === null ? [] : [{ Key: 'runctl:stack', Value: stack }]),
    ],
  };
}

/** EC2's DescribeInstances filters, as far as the reconciler uses them: tag keys, tag values, states. */
function matches(instance: Instance, filters: Filter[] = []): boolean {
  const tags = new Map((instance.Tags ?? []).map((t) => [t.Key, t.Value]));
  return filters.every(({ Name, Values = [] }) => {
    if (Name === 'tag-key') return Values.some((key) => tags.has(key));
    if (Name === 'instance-state-name') return Values.includes(instance.State?.Name ?? '');
    if (Name?.startsWith('tag:')) return Values.includes(tags.get(Name.slice('tag:'.length)) ?? '\0');
    throw new Error(`unexpected filter ${Name}`);
  });
}

/** What EC2 lists as not terminated; TerminateInstances removes an instance from it. */
let fleet: Instance[] = [];

describe('reconcile (mocked AWS, run store on dynalite)', () => {
  let dynalite: RunningDynalite;
  let deps: ReconcileDeps;

  beforeAll(async () => {
    dynalite = await startDynalite();
  });
  afterAll(async () => dynalite.close());

  beforeEach(async () => {
    // A table per test: the reconciler reads every live run in it.
    const table = `reconcile-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    ec2.reset();
    ssm.reset();
    sfn.reset();
    fleet = [];
    ec2.on(DescribeInstancesCommand).callsFake((input: { Filters?: Filter[] }) => ({
      Reservations: [{ Instances: fleet.filter((i) => matches(i, input.Filters)) }],
    }));
    ec2.on(TerminateInstancesCommand).callsFake((input: { InstanceIds?: string[] }) => {
      const ids = new Set(input.InstanceIds ?? []);
      const terminating = fleet.filter((i) => ids.has(i.InstanceId ?? ''));
      fleet = fleet.filter((i) => !ids.has(i.InstanceId ?? ''));
      return {
        TerminatingInstances: terminating.map((i) => ({ InstanceId: i.InstanceId, PreviousState: { Name: 'running' }, CurrentState: { Name: 'shutting-down' } })),
      };
    });
    ec2.on(DescribeSpotPriceHistoryCommand).resolves({ SpotPriceHistory: [] });
    ec2.on(DescribeVolumesCommand).resolves({ Volumes: [] });
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
    sfn.on(SendTaskFailureCommand).resolves({});
    sfn.on(ListExecutionsCommand).resolves({ executions: [] });
    const retry = { attempts: 1, baseMs: 1 };
    deps = {
      store: new DynamoRunStore(dynamoDocumentClient(dynalite.endpoint), table),
      compute: new Ec2Compute({ ec2: ec2Client, ssm: ssmClient, stack: TEST_STACK, throttleRetry: retry }),
      executions: new SfnExecutions(sfnClient, STATE_MACHINE),
      pricing: new Ec2Pricing(ec2Client, 'us-east-1', { throttleRetry: retry }),
      storage: new Ec2StorageInventory(ec2Client, { stack: TEST_STACK, throttleRetry: retry }),
      clock: () => NOW,
    };
  });

  async function stored(run: RunRecord): Promise<RunRecord> {
    await deps.store.create(run);
    return run;
  }

  const terminatedIds = () => ec2.commandCalls(TerminateInstancesCommand).flatMap((c) => c.args[0].input.InstanceIds ?? []);

  it('terminates an instance no run owns once it is past the grace period', async () => {
    fleet = [instance('i-orphan', 'r-0000000000000001', 1, 60)];

    const report = await reconcile(deps);

    expect(terminatedIds()).toEqual(['i-orphan']);
    expect(report.terminated).toEqual([{ instanceId: 'i-orphan', runId: 'r-0000000000000001', reason: 'no run r-0000000000000001 exists' }]);
  });

  it("never lists nor terminates another stack's instance, or one launched without a stack tag", async () => {
    fleet = [
      instance('i-other-stage', 'r-0000000000000005', 1, 60, 'running', 'runctl-prod'),
      instance('i-untagged', 'r-0000000000000006', 1, 60, 'running', null),
      instance('i-ours', 'r-0000000000000007', 1, 60),
    ];

    const report = await reconcile(deps);

    expect(terminatedIds()).toEqual(['i-ours']);
    expect(report.instancesSeen).toBe(1);
    expect(ec2.commandCalls(DescribeInstancesCommand)[0]?.args[0].input.Filters).toContainEqual({ Name: 'tag:runctl:stack', Values: [TEST_STACK] });
  });

  it('leaves prewarm and image-build helpers to their own machines, and terminates one that leaked', async () => {
    const helper = (id: string, minutes: number): Instance => {
      const base = instance(id, `prewarm-${id}`, 1, minutes);
      return { ...base, Tags: [...(base.Tags ?? []), { Key: 'runctl:helper', Value: 'prewarm-volume' }] };
    };
    // A fill may run for a day (its SSM timeout): a helper 20 h in is still filling.
    fleet = [helper('i-filling', 90), helper('i-day-long-fill', 20 * 60), helper('i-leaked', 27 * 60)];

    const report = await reconcile(deps);

    expect(terminatedIds()).toEqual(['i-leaked']);
    expect(report.terminated).toEqual([{ instanceId: 'i-leaked', runId: 'prewarm-i-leaked', reason: 'prewarm-volume helper still running after 27 h' }]);
  });

  it('terminates the instance a finished run left behind, and one of a superseded attempt', async () => {
    const done = await stored(runRecord({ status: 'SUCCEEDED', attempts: [attemptOn('i-done', 120)] }));
    const live = await stored(
      runRecord({
        status: 'TRAINING',
        attempts: [attemptOn('i-old', 120), attemptOn('i-new', 30, { attempt: 2 })],
      }),
    );
    fleet = [instance('i-done', done.runId, 1, 120), instance('i-old', live.runId, 1, 120), instance('i-new', live.runId, 2, 30)];

    const report = await reconcile(deps);

    expect(terminatedIds().sort()).toEqual(['i-done', 'i-old']);
    expect(report.terminated.map((t) => t.reason).sort()).toEqual([
      `attempt 1 is not the live attempt of run ${live.runId}`,
      `run ${done.runId} ended SUCCEEDED`,
    ]);
  });

  it('leaves alone an attempt being provisioned: launched a minute ago, or tagged with an attempt not yet recorded', async () => {
    const provisioning = await stored(runRecord({ status: 'PROVISIONING' }));
    const recovering = await stored(runRecord({ status: 'PROVISIONING', attempts: [attemptOn('i-gone', 300, { endedAt: minutesAgo(40) })] }));
    fleet = [
      instance('i-young', 'r-00000000000000ff', 1, 1),
      instance('i-launching', provisioning.runId, 1, 20),
      instance('i-next', recovering.runId, 2, 20),
    ];

    const report = await reconcile(deps);

    expect(ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(0);
    expect(report.spared).toEqual([{ instanceId: 'i-young', runId: 'r-00000000000000ff' }]);
    expect(report.terminated).toEqual([]);
  });

  it('fails the task of an attempt whose instance is gone, once, and clears the token', async () => {
    const run = await stored(runRecord({ status: 'TRAINING', attempts: [attemptOn('i-lost', 90)], taskToken: 'token-lost' }));

    const first = await reconcile(deps);
    const second = await reconcile(deps);

    const failures = sfn.commandCalls(SendTaskFailureCommand).map((c) => c.args[0].input);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ taskToken: 'token-lost', error: 'Instance.Lost' });
    expect(first.lostInstances).toEqual([{ runId: run.runId, attempt: 1, instanceId: 'i-lost', failed: true }]);
    expect(second.lostInstances).toEqual([]);
    expect((await deps.store.get(run.runId))?.taskToken).toBeUndefined();
  });

  it('multi-node: owns every node of the live attempt and the nodes kept between two attempts; fails the attempt when one node is gone', async () => {
    const node = (rank: number, instanceId: string, overrides: Record<string, string> = {}) => ({
      rank, instanceId, instanceType: 'g5.xlarge', availabilityZone: 'us-east-1a', spot: false, launchedForAttempt: 1, launchedAt: minutesAgo(90), ...overrides,
    });
    // A live 3-node attempt whose node 2 is gone.
    const live = await stored(runRecord({
      status: 'TRAINING',
      taskToken: 'token-nodes',
      attempts: [attemptOn('i-n0', 90, { nodes: [node(0, 'i-n0'), node(1, 'i-n1'), node(2, 'i-n2')] })],
    }));
    // Between two attempts: node 0 kept for the next, node 1 (warned) released.
    const between = await stored(runRecord({
      status: 'RECOVERING',
      attempts: [attemptOn('i-k0', 90, { endedAt: minutesAgo(1), endReason: 'SPOT_INTERRUPTED', nodes: [node(0, 'i-k0'), node(1, 'i-k1', { warnedAt: minutesAgo(2), releasedAt: minutesAgo(1) })] })],
    }));
    fleet = [instance('i-n0', live.runId, 1, 90), instance('i-n1', live.runId, 1, 90), instance('i-k0', between.runId, 1, 90)];

    const report = await reconcile(deps);

    expect(terminatedIds()).toEqual([]);
    expect(report.lostInstances).toEqual([{ runId: live.runId, attempt: 1, instanceId: 'i-n2', failed: true }]);
    expect(sfn.commandCalls(SendTaskFailureCommand).map((c) => c.args[0].input.error)).toEqual(['Instance.Lost']);
  });

  it('does not fail the task of an attempt whose instance is running', async () => {
    const run = await stored(runRecord({ status: 'TRAINING', attempts: [attemptOn('i-fine', 90)], taskToken: 'token-fine' }));
    fleet = [instance('i-fine', run.runId, 1, 90)];

    const report = await reconcile(deps);

    expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
    expect(report.lostInstances).toEqual([]);
    expect((await deps.store.get(run.runId))?.taskToken).toBe('token-fine');
  });

  it('a stale token (the task already closed) is cleared and reported as not failed', async () => {
    sfn.on(SendTaskFailureCommand).rejects(new TaskDoesNotExist({ message: 'closed', $metadata: {} }));
    const run = await stored(runRecord({ status: 'TRAINING', attempts: [attemptOn('i-lost', 90)], taskToken: 'token-stale' }));

    const report = await reconcile(deps);

    expect(report.lostInstances).toEqual([{ runId: run.runId, attempt: 1, instanceId: 'i-lost', failed: false }]);
    expect(report.errors).toEqual([]);
  });

  it('stops a run over its cost limit: asks the agent to checkpoint and stop, and marks the run a budget stop', async () => {
    // 10 h of on-demand g5.xlarge at $1.006/h against a $5 limit.
    const run = await stored(
      runRecord({ status: 'TRAINING', attempts: [attemptOn('i-costly', 600)], taskToken: 'token-costly', limits: { maxCostUsd: 5 } }),
    );
    fleet = [instance('i-costly', run.runId, 1, 600)];

    const report = await reconcile(deps);

    const commands = ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
    expect(commands).toHaveLength(1);
    expect(commands[0]?.InstanceIds).toEqual(['i-costly']);
    const script = commands[0]?.Parameters?.['commands']?.[0] ?? '';
    expect(script).toContain(`/opt/runctl/attempts/${run.runId}/1`);
    expect(script).toContain('control/stop');
    // The checkpoint is kept: no forced failure of the task, no termination under the agent.
    expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
    expect(ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(0);
    expect(report.budgetStops).toEqual([{ runId: run.runId, limit: 'maxCostUsd', costUsd: 10.06, signal: 'agent' }]);

    const after = await deps.store.get(run.runId);
    expect(after).toMatchObject({ status: 'CANCELLING', costUsd: 10.06, cancelRequested: { force: false }, taskToken: 'token-costly' });
    expect(after?.latestCheckpoint).toEqual(run.latestCheckpoint);
    expect(after !== undefined && isBudgetStop(after)).toBe(true);
    expect(after?.statusReason).toMatch(/limits\.maxCostUsd is \$5\.00 and the run has cost \$10\.06/);
  });

  it('stops a run past its maxRuntime, counted from its creation across attempts', async () => {
    const run = await stored(
      runRecord({
        status: 'TRAINING',
        createdMinutesAgo: 13 * 60,
        attempts: [attemptOn('i-a', 13 * 60, { endedAt: minutesAgo(6 * 60) }), attemptOn('i-b', 5 * 60, { attempt: 2, spot: true })],
        taskToken: 'token-long',
        limits: { maxRuntime: '12h' },
      }),
    );
    fleet = [instance('i-b', run.runId, 2, 5 * 60)];

    const report = await reconcile(deps);

    expect(report.budgetStops).toMatchObject([{ runId: run.runId, limit: 'maxRuntime', signal: 'agent' }]);
    expect((await deps.store.get(run.runId))?.statusReason).toMatch(/limits\.maxRuntime is 12h and the run has been going for 13h/);
  });

  it('a run over budget without a live agent is moved to CANCELLING for its next step to end', async () => {
    const run = await stored(runRecord({ status: 'WAITING_FOR_CAPACITY', createdMinutesAgo: 9 * 24 * 60 }));

    const report = await reconcile(deps);

    expect(report.budgetStops).toMatchObject([{ runId: run.runId, limit: 'maxRuntime', signal: 'next-step' }]);
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    expect((await deps.store.get(run.runId))?.status).toBe('CANCELLING');
  });

  it('fails the task with Run.Cancelled when the agent of an over-budget run cannot be reached', async () => {
    ssm.on(SendCommandCommand).rejects(Object.assign(new Error('not reachable'), { name: 'InvalidInstanceId' }));
    const run = await stored(
      runRecord({ status: 'TRAINING', attempts: [attemptOn('i-deaf', 600)], taskToken: 'token-deaf', limits: { maxCostUsd: 5 } }),
    );
    fleet = [instance('i-deaf', run.runId, 1, 600)];

    const report = await reconcile(deps);

    expect(report.budgetStops).toMatchObject([{ runId: run.runId, signal: 'task' }]);
    expect(sfn.commandCalls(SendTaskFailureCommand).map((c) => c.args[0].input)).toMatchObject([{ taskToken: 'token-deaf', error: 'Run.Cancelled' }]);
  });

  it('keeps cost so far on the record, priced along the spot price history, without touching the status', async () => {
    ec2.on(DescribeSpotPriceHistoryCommand).resolves({
      SpotPriceHistory: [
        { SpotPrice: '0.30', Timestamp: new Date(minutesAgo(300)), InstanceType: 'g5.xlarge', AvailabilityZone: 'us-east-1a' },
        { SpotPrice: '0.50', Timestamp: new Date(minutesAgo(60)), InstanceType: 'g5.xlarge', AvailabilityZone: 'us-east-1a' },
      ],
    });
    const run = await stored(
      runRecord({ status: 'TRAINING', attempts: [attemptOn('i-spot', 180, { spot: true })], taskToken: 'token-spot', costUsd: 0.1 }),
    );
    fleet = [instance('i-spot', run.runId, 1, 180)];

    const report = await reconcile(deps);

    // 2 h at $0.30 + 1 h at $0.50
    expect(report.costsUpdated).toEqual([{ runId: run.runId, costUsd: 1.1 }]);
    const after = await deps.store.get(run.runId);
    expect(after).toMatchObject({ status: 'TRAINING', costUsd: 1.1, taskToken: 'token-spot' });
    const lookup = ec2.commandCalls(DescribeSpotPriceHistoryCommand)[0]?.args[0].input;
    expect(lookup).toMatchObject({ InstanceTypes: ['g5.xlarge'], AvailabilityZone: 'us-east-1a', ProductDescriptions: ['Linux/UNIX'] });
  });

  it('two passes at once do each piece of work once', async () => {
    const lost = await stored(runRecord({ status: 'TRAINING', attempts: [attemptOn('i-lost', 90)], taskToken: 'token-lost' }));
    const costly = await stored(
      runRecord({ status: 'TRAINING', attempts: [attemptOn('i-costly', 600)], taskToken: 'token-costly', limits: { maxCostUsd: 5 } }),
    );
    fleet = [instance('i-orphan', 'r-0000000000000002', 1, 60), instance('i-costly', costly.runId, 1, 600)];

    const [a, b] = await Promise.all([reconcile(deps), reconcile(deps)]);

    expect(sfn.commandCalls(SendTaskFailureCommand).map((c) => c.args[0].input.taskToken)).toEqual(['token-lost']);
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(1);
    expect([...a.budgetStops, ...b.budgetStops].map((s) => s.runId)).toEqual([costly.runId]);
    expect([...a.lostInstances, ...b.lostInstances].filter((l) => l.failed).map((l) => l.runId)).toEqual([lost.runId]);
    // Both passes may ask EC2 to terminate the orphan (harmless); it is the only instance touched.
    expect(new Set(terminatedIds())).toEqual(new Set(['i-orphan']));
    expect(fleet.map((i) => i.InstanceId)).toEqual(['i-costly']);
  });

  it('ends the wait of a CANCELLING run whose agent has not stopped long after it was asked', async () => {
    const run = runRecord({ status: 'CANCELLING', attempts: [attemptOn('i-slow', 120)], taskToken: 'token-slow' });
    await stored({ ...run, cancelRequested: { at: minutesAgo(DEFAULT_RECONCILE_OPTIONS.stopDeadlineSeconds / 60 + 1), force: false } });
    fleet = [instance('i-slow', run.runId, 1, 120)];

    const report = await reconcile(deps);

    expect(report.overdueStops).toEqual([run.runId]);
    expect(sfn.commandCalls(SendTaskFailureCommand).map((c) => c.args[0].input)).toMatchObject([{ taskToken: 'token-slow', error: 'Run.Cancelled' }]);
  });

  it('reports unattached runctl volumes and run snapshots that no live run uses, and nothing else', async () => {
    const live = await stored(runRecord({ status: 'TRAINING', attempts: [attemptOn('i-live', 30)], taskToken: 't' }));
    fleet = [instance('i-live', live.runId, 1, 30)];
    const old = new Date(minutesAgo(24 * 60));
    ec2.on(DescribeVolumesCommand).resolves({
      Volumes: [
        { VolumeId: 'vol-stray', State: 'available', AvailabilityZone: 'us-east-1a', Size: 500, CreateTime: old, Tags: [{ Key: 'runctl:volume', Value: 'run:r-dead' }] },
        { VolumeId: 'vol-live', State: 'available', AvailabilityZone: 'us-east-1a', Size: 500, CreateTime: old, Tags: [{ Key: 'runctl:volume', Value: `run:${live.runId}` }] },
        { VolumeId: 'vol-kept', State: 'available', AvailabilityZone: 'us-east-1a', Size: 500, CreateTime: old, Tags: [{ Key: 'runctl:volume', Value: 'run:r-dead' }, { Key: 'runctl:keep', Value: 'true' }] },
        { VolumeId: 'vol-attached', State: 'in-use', AvailabilityZone: 'us-east-1a', Size: 100, CreateTime: old, Tags: [{ Key: 'runctl:run', Value: 'r-dead' }] },
        { VolumeId: 'vol-fresh', State: 'available', AvailabilityZone: 'us-east-1a', Size: 500, CreateTime: new Date(minutesAgo(5)), Tags: [{ Key: 'runctl:volume', Value: 'prewarm:p1' }] },
      ],
    });
    ec2.on(DescribeSnapshotsCommand).resolves({
      Snapshots: [
        { SnapshotId: 'snap-stray', State: 'completed', VolumeSize: 500, Tags: [{ Key: 'runctl:run', Value: 'r-dead' }] },
        { SnapshotId: 'snap-dataset', State: 'completed', VolumeSize: 500, Tags: [{ Key: 'runctl:volume', Value: 'prewarm:p1' }] },
      ],
    });

    const report = await reconcile(deps);

    expect(report.strayVolumes.map((v) => [v.volumeId, v.reason])).toEqual([['vol-stray', 'unattached, and run r-dead is not live']]);
    expect(report.straySnapshots.map((s) => s.snapshotId)).toEqual(['snap-stray']);
    const storageFilters = [{ Name: 'tag:runctl:stack', Values: [TEST_STACK] }];
    expect(ec2.commandCalls(DescribeVolumesCommand)[0]?.args[0].input.Filters).toEqual(storageFilters);
    expect(ec2.commandCalls(DescribeSnapshotsCommand)[0]?.args[0].input.Filters).toEqual(storageFilters);
  });

  it('one failing run does not stop the pass: the error is reported and the other runs are handled', async () => {
    ssm.on(SendCommandCommand).rejects(Object.assign(new Error('boom'), { name: 'InvalidInstanceId' }));
    sfn.on(SendTaskFailureCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }));
    await stored(runRecord({ status: 'TRAINING', attempts: [attemptOn('i-x', 600)], taskToken: 'tx', limits: { maxCostUsd: 1 } }));
    fleet = [instance('i-orphan', 'r-0000000000000003', 1, 60)];

    const report = await reconcile(deps);

    expect(report.errors).toEqual([expect.objectContaining({ step: 'fail-lost-attempt', message: expect.stringMatching(/Aws.CallFailed/) })]);
    expect(terminatedIds()).toEqual(['i-orphan']);
  });

  it('the scheduled handler runs one pass and returns its report', async () => {
    fleet = [instance('i-orphan', 'r-0000000000000004', 1, 60)];

    const report = await createHandler(() => deps)({ 'detail-type': 'Scheduled Event', source: 'aws.events' }, lambdaContext());

    expect(report.terminated.map((t) => t.instanceId)).toEqual(['i-orphan']);
    expect(report.startedAt).toBe(NOW.toISOString());
  });
  describe('a live run whose execution died', () => {
    const arnOf = (runId: string) => `arn:aws:states:us-east-1:123456789012:execution:runctl-test-train-run:${runId}`;
    const withExecution = (run: RunRecord): RunRecord => ({ ...run, executionArn: arnOf(run.runId) });
    const describedArns = () => sfn.commandCalls(DescribeExecutionCommand).map((c) => c.args[0].input.executionArn);

    it.each(['FAILED', 'ABORTED', 'TIMED_OUT'] as const)(
      'an execution that ended %s outside every Catch: its instance terminated, its token cleared, the run FAILED_CONTROLLER',
      async (executionStatus) => {
        const run = await stored(withExecution(runRecord({ status: 'TRAINING', attempts: [attemptOn('i-stranded', 300)], taskToken: 'token-stranded' })));
        const record = run;
        fleet = [instance('i-stranded', run.runId, 1, 300)];
        sfn.on(DescribeExecutionCommand, { executionArn: record.executionArn }).resolves({ status: executionStatus });

        const report = await reconcile(deps);

        expect(describedArns()).toEqual([record.executionArn]);
        expect(terminatedIds()).toEqual(['i-stranded']);
        expect(report.deadExecutions).toEqual([{ runId: run.runId, executionArn: record.executionArn, executionStatus, terminated: ['i-stranded'] }]);
        const after = await deps.store.get(run.runId);
        expect(after?.status).toBe('FAILED_CONTROLLER');
        expect(after?.statusReason).toContain(`execution ended ${executionStatus} while the run was TRAINING`);
        expect(after?.taskToken).toBeUndefined();
        // Not counted twice as an orphan, and no task left to fail.
        expect(report.terminated).toEqual([]);
        expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
      },
    );

    it('an execution that died waiting for its replacement: that wait\'s token cleared too', async () => {
      const run = await stored(withExecution({ ...runRecord({ status: 'PROVISIONING', attempts: [attemptOn('i-warned', 300)] }), replacementToken: 'wait-stranded' }));
      fleet = [instance('i-warned', run.runId, 1, 300)];
      sfn.on(DescribeExecutionCommand, { executionArn: run.executionArn }).resolves({ status: 'FAILED' });

      await reconcile(deps);

      const after = await deps.store.get(run.runId);
      expect(after?.status).toBe('FAILED_CONTROLLER');
      expect(after?.replacementToken).toBeUndefined();
    });

    it('an execution Step Functions no longer knows counts as dead too', async () => {
      const run = await stored(withExecution(runRecord({ status: 'PREFETCHING', attempts: [attemptOn('i-gone-exec', 30)] })));
      fleet = [instance('i-gone-exec', run.runId, 1, 30)];
      sfn.on(DescribeExecutionCommand).rejects(new ExecutionDoesNotExist({ message: 'Execution Does Not Exist', $metadata: { httpStatusCode: 400 } }));

      const report = await reconcile(deps);

      expect(report.deadExecutions).toMatchObject([{ runId: run.runId, executionStatus: 'GONE', terminated: ['i-gone-exec'] }]);
      expect((await deps.store.get(run.runId))?.status).toBe('FAILED_CONTROLLER');
    });

    it('a running execution, or one whose run ended meanwhile, is left alone', async () => {
      const listed = await stored(withExecution(runRecord({ status: 'TRAINING', attempts: [attemptOn('i-healthy', 30)], taskToken: 'token-healthy' })));
      // Started after the listing: DescribeExecution says it runs.
      const late = await stored(withExecution(runRecord({ status: 'PROVISIONING' })));
      // Ended by FinishRun between the listing of runs and the check.
      const finished = await stored(withExecution(runRecord({ status: 'TRAINING', attempts: [attemptOn('i-finishing', 30)] })));
      fleet = [instance('i-healthy', listed.runId, 1, 30), instance('i-finishing', finished.runId, 1, 30)];
      sfn.on(ListExecutionsCommand).resolves({ executions: [{ executionArn: arnOf(listed.runId), stateMachineArn: STATE_MACHINE, name: listed.runId, status: 'RUNNING', startDate: NOW }] });
      sfn.on(DescribeExecutionCommand, { executionArn: arnOf(late.runId) }).resolves({ status: 'RUNNING' });
      sfn.on(DescribeExecutionCommand, { executionArn: arnOf(finished.runId) }).callsFake(async () => {
        await deps.store.transition(finished.runId, 'TRAINING', 'SUCCEEDED');
        return { status: 'SUCCEEDED' };
      });

      const report = await reconcile(deps);

      expect(report.deadExecutions).toEqual([]);
      expect(describedArns().sort()).toEqual([arnOf(late.runId), arnOf(finished.runId)].sort());
      expect((await deps.store.get(listed.runId))?.status).toBe('TRAINING');
      expect((await deps.store.get(late.runId))?.status).toBe('PROVISIONING');
      expect(terminatedIds()).not.toContain('i-healthy');
    });
  });
});
