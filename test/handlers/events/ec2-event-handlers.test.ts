import { readFileSync } from 'node:fs';
import { DescribeTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { SFNClient, SendTaskFailureCommand, TaskTimedOut } from '@aws-sdk/client-sfn';
import { SSMClient, SendCommandCommand } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as createInstanceState } from '../../../functions/events/instance-state';
import { createHandler as createRebalance } from '../../../functions/events/rebalance';
import { createHandler as createSpotWarning } from '../../../functions/events/spot-warning';
import { DynamoAttemptSignals } from '../../../shared/adapters/dynamo-attempt-signals';
import { DynamoRunStore, runsDocumentClient } from '../../../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../../../shared/adapters/ec2-compute';
import { Ec2InstanceTags } from '../../../shared/adapters/ec2-instance-tags';
import { SfnExecutions } from '../../../shared/adapters/sfn-executions';
import { checkpointNowCommand } from '../../../shared/agent/commands';
import type { Attempt, RunRecord } from '../../../shared/domain/run-record';
import { RunSpecSchema } from '../../../shared/domain/run-spec';
import type { RunStatus } from '../../../shared/domain/run-status';
import { REPLACEMENT_TRIGGER_ACTIONS } from '../../../shared/usecases/instance-event';
import { ALICE, BOB, lambdaContext } from '../../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../../support/dynalite';
import { TEST_STACK } from '../../support/stack';

const STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-train-run';
const INSTANCE = 'i-0b3c5a9e1f2d4c6a8';
const EARLIER_INSTANCE = 'i-0aaaaaaaaaaaaaaa1';

function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../../fixtures/events/${name}.json`, import.meta.url), 'utf8'));
}
const spotWarningEvent = () => fixture('spot-interruption-warning');
const rebalanceEvent = () => fixture('rebalance-recommendation');
function stateChangeEvent(state: string): Record<string, unknown> {
  const event = fixture('instance-state-change');
  return { ...event, detail: { 'instance-id': INSTANCE, state } };
}

let runs = 0;
/** A run on its second attempt (the first was interrupted), training on INSTANCE and waiting on a task token. */
function trainingRun(options: { checkpointOnRebalance?: boolean; preProvisionOnRebalance?: boolean; status?: RunStatus; second?: Partial<Attempt> } = {}): RunRecord {
  runs += 1;
  const runId = `r-events-${runs}`;
  const at = '2026-11-25T12:00:00.000Z';
  return {
    runId,
    owner: ALICE,
    spec: RunSpecSchema.parse({
      name: 'resnet',
      code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' },
      instance: { types: 'g5.xlarge,g6.xlarge' },
      recovery: { checkpointOnRebalance: options.checkpointOnRebalance ?? false, preProvisionOnRebalance: options.preProvisionOnRebalance ?? false },
    }),
    specHash: 'hash',
    status: options.status ?? 'TRAINING',
    createdAt: at,
    updatedAt: at,
    attempts: [
      { attempt: 1, instanceId: EARLIER_INSTANCE, spot: true, startedAt: at, endedAt: at, endReason: 'SPOT_INTERRUPTED' },
      { attempt: 2, instanceId: INSTANCE, instanceType: 'g5.xlarge', spot: true, startedAt: at, ...options.second },
    ],
    taskToken: `token-of-${runId}`,
    taskTokenAttempt: 2,
    costUsd: 0,
    interruptions: 1,
    userFailures: 0,
  };
}

describe('EC2 event handlers', () => {
  let dynalite: RunningDynalite;
  let seedStore: DynamoRunStore;
  let store: DynamoRunStore;
  let signals: DynamoAttemptSignals;
  /** Every DynamoDB request the handlers send, by command name. */
  const dynamoCalls: string[] = [];
  const ec2Client = new EC2Client({ region: 'us-east-1' });
  const ec2 = mockClient(ec2Client);
  const ssmClient = new SSMClient({ region: 'us-east-1' });
  const ssm = mockClient(ssmClient);
  const sfnClient = new SFNClient({ region: 'us-east-1' });
  const sfn = mockClient(sfnClient);
  const instances = new Ec2InstanceTags(ec2Client, TEST_STACK);
  const compute = new Ec2Compute({ ec2: ec2Client, ssm: ssmClient, stack: TEST_STACK, throttleRetry: { attempts: 1, baseMs: 1 } });
  const executions = new SfnExecutions(sfnClient, STATE_MACHINE);

  const spotWarning = () => createSpotWarning(() => ({ instances, signals, store, compute }));
  const rebalance = () => createRebalance(() => ({ instances, signals, store, compute }));
  const instanceState = () => createInstanceState(() => ({ instances, store, executions }));

  /** The instance carries the tags ProvisionInstance puts on it. */
  function tagInstance(run: RunRecord, options: { attempt?: number; owner?: string | null; stack?: string } = {}): void {
    const tags = [
      { Key: 'runctl:run', Value: run.runId },
      { Key: 'runctl:attempt', Value: String(options.attempt ?? 2) },
      { Key: 'runctl:stack', Value: options.stack ?? TEST_STACK },
      ...(options.owner === null ? [] : [{ Key: 'runctl:owner', Value: options.owner ?? run.owner }]),
    ];
    ec2.on(DescribeTagsCommand).resolves({ Tags: tags.map((t) => ({ ...t, ResourceId: INSTANCE, ResourceType: 'instance' })) });
  }

  /** AWS requests sent since the last reset, by service. */
  function awsCalls() {
    return { ec2: ec2.calls().length, dynamodb: dynamoCalls.length, ssm: ssm.calls().length, sfn: sfn.calls().length };
  }

  async function seed(run: RunRecord): Promise<RunRecord> {
    await seedStore.create(run);
    return run;
  }

  async function stored(runId: string): Promise<RunRecord> {
    const record = await seedStore.get(runId);
    if (record === undefined) throw new Error(`run ${runId} vanished`);
    return record;
  }

  beforeAll(async () => {
    dynalite = await startDynalite();
    const table = `events-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    seedStore = new DynamoRunStore(dynamoDocumentClient(dynalite.endpoint), table);
    const counted = dynamoClient(dynalite.endpoint);
    counted.middlewareStack.add(
      (next, context) => async (args) => {
        dynamoCalls.push(context.commandName ?? 'unknown');
        return next(args);
      },
      { step: 'initialize', name: 'countDynamoCalls' },
    );
    const documentClient = runsDocumentClient(counted);
    store = new DynamoRunStore(documentClient, table);
    signals = new DynamoAttemptSignals(documentClient, table);
  });
  afterAll(async () => dynalite.close());
  beforeEach(() => {
    ec2.reset();
    ssm.reset();
    sfn.reset();
    dynamoCalls.length = 0;
    ec2.on(DescribeTagsCommand).resolves({ Tags: [] });
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
    sfn.on(SendTaskFailureCommand).resolves({});
  });

  describe('spot interruption warning', () => {
    it('moves the run to CHECKPOINTING, records the interruption and tells the agent to checkpoint, in three AWS calls', async () => {
      const run = await seed(trainingRun());
      tagInstance(run);

      const outcome = await spotWarning()(spotWarningEvent(), lambdaContext());

      expect(outcome).toEqual({ action: 'checkpoint-requested', instanceId: INSTANCE, runId: run.runId, attempt: 2, commandId: 'cmd-1' });
      const record = await stored(run.runId);
      expect(record.status).toBe('CHECKPOINTING');
      expect(record.statusReason).toMatch(/Spot interruption warning \(terminate\) for i-0b3c5a9e1f2d4c6a8 at 2026-11-25T14:02:11Z/);
      expect(record.attempts[1]).toMatchObject({ attempt: 2, endReason: 'SPOT_INTERRUPTED' });
      expect(record.attempts[1]?.endedAt).toBeUndefined();
      expect(record.attempts[0]).toEqual(run.attempts[0]);
      const sent = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input;
      expect(sent?.InstanceIds).toEqual([INSTANCE]);
      expect(sent?.Parameters?.commands).toEqual([checkpointNowCommand(run.runId, 2, 'spot-warning')]);
      expect(awsCalls()).toEqual({ ec2: 1, dynamodb: 1, ssm: 1, sfn: 0 });
      expect(dynamoCalls).toEqual(['UpdateItemCommand']);
    });

    it('keeps the status indexes right: the run is listed as CHECKPOINTING, no longer as TRAINING', async () => {
      const run = await seed(trainingRun());
      tagInstance(run);

      await spotWarning()(spotWarningEvent(), lambdaContext());

      const checkpointing = await seedStore.listByOwner(ALICE, { status: 'CHECKPOINTING', limit: 100 });
      const training = await seedStore.listByOwner(ALICE, { status: 'TRAINING', limit: 100 });
      const byStatus = await seedStore.listByStatus('CHECKPOINTING', { limit: 100 });
      expect(checkpointing.items.map((r) => r.runId)).toContain(run.runId);
      expect(training.items.map((r) => r.runId)).not.toContain(run.runId);
      expect(byStatus.items.map((r) => r.runId)).toContain(run.runId);
    });

    it('on an instance without the owner tag, reads the run first (four calls) and still checkpoints', async () => {
      const run = await seed(trainingRun());
      tagInstance(run, { owner: null });

      const outcome = await spotWarning()(spotWarningEvent(), lambdaContext());

      expect(outcome.action).toBe('checkpoint-requested');
      expect((await stored(run.runId)).status).toBe('CHECKPOINTING');
      expect(dynamoCalls).toEqual(['GetItemCommand', 'UpdateItemCommand']);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(1);
    });

    it('ignores an instance runctl does not own, without touching DynamoDB or SSM', async () => {
      const outcome = await spotWarning()(spotWarningEvent(), lambdaContext());

      expect(outcome).toEqual({ action: 'ignored', instanceId: INSTANCE, reason: 'the instance carries no run tag of this stack' });
      expect(awsCalls()).toEqual({ ec2: 1, dynamodb: 0, ssm: 0, sfn: 0 });
    });

    it("ignores another stack's instance even when this stack has a run of the same id", async () => {
      const run = await seed(trainingRun());
      tagInstance(run, { stack: 'runctl-prod' });

      const outcome = await spotWarning()(spotWarningEvent(), lambdaContext());

      expect(outcome).toEqual({ action: 'ignored', instanceId: INSTANCE, reason: 'the instance carries no run tag of this stack' });
      expect((await stored(run.runId)).status).toBe('TRAINING');
      expect(awsCalls()).toEqual({ ec2: 1, dynamodb: 0, ssm: 0, sfn: 0 });
    });

    it('sends "checkpoint now" once when the same warning arrives twice', async () => {
      const run = await seed(trainingRun());
      tagInstance(run);

      await spotWarning()(spotWarningEvent(), lambdaContext());
      const again = await spotWarning()(spotWarningEvent(), lambdaContext());

      expect(again).toMatchObject({ action: 'ignored', runId: run.runId, attempt: 2 });
      expect(again.action === 'ignored' && again.reason).toMatch(/^duplicate warning/);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(1);
      expect((await stored(run.runId)).status).toBe('CHECKPOINTING');
    });

    it.each([
      ['the attempt already ended', { status: 'RECOVERING' as const, second: { endedAt: '2026-11-25T14:03:00.000Z', endReason: 'INSTANCE_LOST' as const } }, /already ended \(INSTANCE_LOST\)/],
      ['the run is terminal', { status: 'SUCCEEDED' as const }, /already ended \(SUCCEEDED\)/],
      ['the run is not training yet', { status: 'PREFETCHING' as const }, /run is PREFETCHING, not TRAINING/],
      ['a cancel is checkpointing it already', { status: 'CANCELLING' as const }, /run is CANCELLING, not TRAINING/],
    ])('ignores a late warning when %s, and changes nothing', async (_label, options, reason) => {
      const run = await seed(trainingRun(options));
      tagInstance(run);

      const outcome = await spotWarning()(spotWarningEvent(), lambdaContext());

      expect(outcome.action).toBe('ignored');
      expect(outcome.action === 'ignored' && outcome.reason).toMatch(reason);
      expect(await stored(run.runId)).toEqual(run);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    });

    it('ignores a warning for the instance of a superseded attempt', async () => {
      const run = await seed(trainingRun());
      tagInstance(run, { attempt: 1 });

      const outcome = await spotWarning()(spotWarningEvent(), lambdaContext());

      expect(outcome.action === 'ignored' && outcome.reason).toMatch(/attempt 1 of run .* was superseded by attempt 2/);
      expect(await stored(run.runId)).toEqual(run);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    });

    it('refuses an owner tag that does not match the run, so the status index is never written wrong', async () => {
      const run = await seed(trainingRun());
      tagInstance(run, { owner: BOB });

      const outcome = await spotWarning()(spotWarningEvent(), lambdaContext());

      expect(outcome.action === 'ignored' && outcome.reason).toMatch(/owner tag does not match/);
      expect(await stored(run.runId)).toEqual(run);
    });

    it('keeps the recorded interruption when SSM cannot reach the instance (the agent polls IMDS too)', async () => {
      const run = await seed(trainingRun());
      tagInstance(run);
      ssm.on(SendCommandCommand).rejects(Object.assign(new Error('Instances not in a valid state'), { name: 'InvalidInstanceId' }));

      const outcome = await spotWarning()(spotWarningEvent(), lambdaContext());

      expect(outcome).toMatchObject({ action: 'checkpoint-requested', commandId: null });
      expect((await stored(run.runId)).status).toBe('CHECKPOINTING');
    });

    it('fails on an event that is not a spot warning, naming the field', async () => {
      const event = { ...spotWarningEvent(), detail: { 'instance-id': 'vol-123', 'instance-action': 'terminate' } };

      await expect(spotWarning()(event, lambdaContext())).rejects.toMatchObject({
        name: 'Event.Invalid',
        message: expect.stringMatching(/detail\.instance-id/),
      });
      expect(awsCalls()).toEqual({ ec2: 0, dynamodb: 0, ssm: 0, sfn: 0 });
    });
  });

  describe('instance state change', () => {
    it('fails the live task with Instance.Lost and clears the token when the instance shuts down', async () => {
      const run = await seed(trainingRun());
      tagInstance(run);

      const outcome = await instanceState()(stateChangeEvent('shutting-down'), lambdaContext());

      expect(outcome).toEqual({ action: 'task-failed', instanceId: INSTANCE, runId: run.runId, attempt: 2, error: 'Instance.Lost' });
      const failure = sfn.commandCalls(SendTaskFailureCommand)[0]?.args[0].input;
      expect(failure?.taskToken).toBe(run.taskToken);
      expect(failure?.error).toBe('Instance.Lost');
      expect(JSON.parse(failure?.cause ?? '{}')).toMatchObject({ instanceId: INSTANCE, attempt: 2, state: 'shutting-down' });
      const record = await stored(run.runId);
      expect(record.taskToken).toBeUndefined();
      expect(record.taskTokenAttempt).toBeUndefined();
    });

    it('sends Instance.Lost once across shutting-down and terminated, and across a redelivered event', async () => {
      const run = await seed(trainingRun());
      tagInstance(run);

      const first = await instanceState()(stateChangeEvent('shutting-down'), lambdaContext());
      const redelivered = await instanceState()(stateChangeEvent('shutting-down'), lambdaContext());
      const terminated = await instanceState()(stateChangeEvent('terminated'), lambdaContext());

      expect(first.action).toBe('task-failed');
      expect(redelivered.action).toBe('ignored');
      expect(terminated.action).toBe('ignored');
      expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(1);
    });

    it('lets only one of two concurrent duplicate events fail the task', async () => {
      const run = await seed(trainingRun());
      tagInstance(run);

      const outcomes = await Promise.all([
        instanceState()(stateChangeEvent('stopping'), lambdaContext()),
        instanceState()(stateChangeEvent('stopping'), lambdaContext()),
      ]);

      expect(outcomes.map((o) => o.action).sort()).toEqual(['ignored', 'task-failed']);
      expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(1);
    });

    it.each(['pending', 'running'])('ignores %s without an AWS call', async (state) => {
      const outcome = await instanceState()(stateChangeEvent(state), lambdaContext());

      expect(outcome).toMatchObject({ action: 'ignored', reason: `the instance is ${state}: nothing was lost` });
      expect(awsCalls()).toEqual({ ec2: 0, dynamodb: 0, ssm: 0, sfn: 0 });
    });

    it('ignores an instance runctl does not own', async () => {
      const outcome = await instanceState()(stateChangeEvent('terminated'), lambdaContext());

      expect(outcome).toMatchObject({ action: 'ignored', reason: 'the instance carries no run tag of this stack' });
      expect(sfn.calls()).toHaveLength(0);
    });

    it('ignores the termination of a finished attempt (ReleaseResources terminating it)', async () => {
      const run = await seed(trainingRun({ status: 'RECOVERING', second: { endedAt: '2026-11-25T14:03:00.000Z', endReason: 'SPOT_INTERRUPTED' } }));
      tagInstance(run);

      const outcome = await instanceState()(stateChangeEvent('terminated'), lambdaContext());

      expect(outcome.action === 'ignored' && outcome.reason).toMatch(/already ended \(SPOT_INTERRUPTED\)/);
      expect(sfn.calls()).toHaveLength(0);
      expect((await stored(run.runId)).taskToken).toBe(run.taskToken);
    });

    it('ignores an instance whose run is terminal', async () => {
      const run = await seed(trainingRun({ status: 'CANCELLED' }));
      tagInstance(run);

      const outcome = await instanceState()(stateChangeEvent('terminated'), lambdaContext());

      expect(outcome.action === 'ignored' && outcome.reason).toMatch(/already ended \(CANCELLED\)/);
      expect(sfn.calls()).toHaveLength(0);
    });

    it('fails the wait of an attempt that was warned of a spot interruption and died before its agent called back', async () => {
      const run = await seed(trainingRun({ status: 'CHECKPOINTING', second: { endReason: 'SPOT_INTERRUPTED' } }));
      tagInstance(run);

      const outcome = await instanceState()(stateChangeEvent('shutting-down'), lambdaContext());

      expect(outcome.action).toBe('task-failed');
    });

    it('treats a token whose task already closed as stale, not as an error', async () => {
      const run = await seed(trainingRun());
      tagInstance(run);
      sfn.on(SendTaskFailureCommand).rejects(new TaskTimedOut({ message: 'Task Timed Out', $metadata: {} }));

      const outcome = await instanceState()(stateChangeEvent('terminated'), lambdaContext());

      expect(outcome).toMatchObject({ action: 'ignored', reason: 'the task had already closed (stale token)' });
    });

    it('puts the token back and fails the invocation when Step Functions cannot be reached, so a retry can fail the task', async () => {
      const run = await seed(trainingRun());
      tagInstance(run);
      sfn.on(SendTaskFailureCommand).rejectsOnce(
        Object.assign(new Error('Service unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } }),
      );

      await expect(instanceState()(stateChangeEvent('terminated'), lambdaContext())).rejects.toMatchObject({ name: 'Aws.Throttled' });
      expect((await stored(run.runId)).taskToken).toBe(run.taskToken);

      const retried = await instanceState()(stateChangeEvent('terminated'), lambdaContext());
      expect(retried.action).toBe('task-failed');
    });

    it('ignores an attempt that holds no task token yet', async () => {
      const run = trainingRun({ status: 'PREFETCHING' });
      await seed({ ...run, taskToken: undefined, taskTokenAttempt: undefined });
      tagInstance(run);

      const outcome = await instanceState()(stateChangeEvent('stopped'), lambdaContext());

      expect(outcome.action === 'ignored' && outcome.reason).toMatch(/attempt 2 holds no task token \(run is PREFETCHING\)/);
      expect(sfn.calls()).toHaveLength(0);
    });
  });

  describe('rebalance recommendation', () => {
    it('asks for an early checkpoint when the spec has recovery.checkpointOnRebalance, keeping the status', async () => {
      const run = await seed(trainingRun({ checkpointOnRebalance: true }));
      tagInstance(run);

      const outcome = await rebalance()(rebalanceEvent(), lambdaContext());

      expect(outcome).toEqual({ action: 'checkpoint-requested', instanceId: INSTANCE, runId: run.runId, attempt: 2, commandId: 'cmd-1' });
      const sent = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input;
      expect(sent?.Parameters?.commands).toEqual([checkpointNowCommand(run.runId, 2, 'requested')]);
      const record = await stored(run.runId);
      expect(record.status).toBe('TRAINING');
      expect(record.statusReason).toMatch(/Rebalance recommendation for i-0b3c5a9e1f2d4c6a8 .*early checkpoint of attempt 2 requested/);
      expect(awsCalls()).toEqual({ ec2: 1, dynamodb: 1, ssm: 1, sfn: 0 });
    });

    it('ignores the recommendation when the spec does not ask for it', async () => {
      const run = await seed(trainingRun({ checkpointOnRebalance: false }));
      tagInstance(run);

      const outcome = await rebalance()(rebalanceEvent(), lambdaContext());

      expect(outcome).toMatchObject({ action: 'ignored', reason: 'the run asks for neither recovery.checkpointOnRebalance nor recovery.preProvisionOnRebalance' });
      expect(ssm.calls()).toHaveLength(0);
      expect(await stored(run.runId)).toEqual(run);
    });

    it('starts a handover with preProvisionOnRebalance alone: recorded, no command sent, the attempt trains on', async () => {
      const run = await seed(trainingRun({ preProvisionOnRebalance: true }));
      tagInstance(run);

      const outcome = await rebalance()(rebalanceEvent(), lambdaContext());

      // Its answer is what starts prepare-replacement (REPLACEMENT_TRIGGER_ACTIONS).
      expect(outcome).toEqual({ action: 'replacement-requested', instanceId: INSTANCE, runId: run.runId, attempt: 2 });
      expect(REPLACEMENT_TRIGGER_ACTIONS).toContain(outcome.action);
      expect(ssm.calls()).toHaveLength(0);
      const record = await stored(run.runId);
      expect(record.status).toBe('TRAINING');
      expect(record.statusReason).toMatch(/Rebalance recommendation for i-0b3c5a9e1f2d4c6a8 .*launching a replacement; attempt 2 trains on until it is ready/);
      // The early-checkpoint write is refused first (its condition), then the handover's lands.
      expect(awsCalls()).toEqual({ ec2: 1, dynamodb: 2, ssm: 0, sfn: 0 });

      const again = await rebalance()(rebalanceEvent(), lambdaContext());
      expect(again.action === 'ignored' && again.reason).toMatch(/^duplicate recommendation/);
    });

    it('with both flags asks for the early checkpoint, not a handover', async () => {
      const run = await seed(trainingRun({ checkpointOnRebalance: true, preProvisionOnRebalance: true }));
      tagInstance(run);

      const outcome = await rebalance()(rebalanceEvent(), lambdaContext());

      expect(outcome).toMatchObject({ action: 'checkpoint-requested', commandId: 'cmd-1' });
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(1);
    });

    it('starts no handover for a run already checkpointing on a spot warning', async () => {
      const run = await seed(trainingRun({ preProvisionOnRebalance: true }));
      tagInstance(run);

      await spotWarning()(spotWarningEvent(), lambdaContext());
      const outcome = await rebalance()(rebalanceEvent(), lambdaContext());

      expect(outcome).toMatchObject({ action: 'ignored', reason: 'run is CHECKPOINTING, not TRAINING: no checkpoint to ask for' });
    });

    it('asks once when the recommendation arrives twice', async () => {
      const run = await seed(trainingRun({ checkpointOnRebalance: true }));
      tagInstance(run);

      await rebalance()(rebalanceEvent(), lambdaContext());
      const again = await rebalance()(rebalanceEvent(), lambdaContext());

      expect(again.action === 'ignored' && again.reason).toMatch(/^duplicate recommendation/);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(1);
    });

    it('ignores a recommendation for an attempt that is already checkpointing on a spot warning', async () => {
      const run = await seed(trainingRun({ checkpointOnRebalance: true }));
      tagInstance(run);

      await spotWarning()(spotWarningEvent(), lambdaContext());
      const outcome = await rebalance()(rebalanceEvent(), lambdaContext());

      expect(outcome.action).toBe('ignored');
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(1);
    });

    it('ignores an instance runctl does not own', async () => {
      const outcome = await rebalance()(rebalanceEvent(), lambdaContext());

      expect(outcome).toMatchObject({ action: 'ignored', reason: 'the instance carries no run tag of this stack' });
      expect(awsCalls()).toEqual({ ec2: 1, dynamodb: 0, ssm: 0, sfn: 0 });
    });
  });
});
