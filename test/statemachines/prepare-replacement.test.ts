import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import * as spotWarning from '../../functions/events/spot-warning';
import * as prepareReplacement from '../../functions/steps/prepare-replacement';
import { loadAsl, localLambdaArn } from '../../local/asl';
import { EC2_DETAIL_TYPE, EventRouter, LAMBDA_SUCCESS_DETAIL_TYPE } from '../../local/event-router';
import { LocalStateMachine, type ExecutionOutcome, type LocalExecution } from '../../local/state-machine-runner';
import { LocalExecutions } from '../../local/runtime-adapters';
import type { TaskTokens } from '../../local/task-tokens';
import { DynamoAttemptSignals } from '../../shared/adapters/dynamo-attempt-signals';
import { Ec2InstanceTags } from '../../shared/adapters/ec2-instance-tags';
import type { RunRecord } from '../../shared/domain/run-record';
import { parseRunSpec, type RunSpecInput } from '../../shared/domain/run-spec';
import { isTerminal } from '../../shared/domain/run-status';
import { cancelRun } from '../../shared/usecases/cancel-run';
import { dynamoDocumentClient } from '../support/aws-clients';
import { awsError, startSimulatedAccount, trainRunLambdas, type AgentBehaviour, type RunningAccount, type SimulatedAccount } from './train-run-world';
import { TEST_STACK } from '../support/stack';

/**
 * The prepare-replacement machine (docs/recovery.md, "The replacement starts on the warning"):
 * its real ASL and handler, started by the real spot-warning handler's answer through a Lambda
 * destination, beside the train-run machine's real ASL and handlers, over the simulated account.
 * Each scenario warns attempt 1 while its agent trains, lets prepare-replacement run (a race is
 * injected between its steps), and only then lets the warned agent call back.
 */

const BUCKET = 'runctl-prepare-replacement-tests';
const TABLE = 'runs';
const DATA = [{ source: 's3://datasets/mnist/', target: '/data' }];

let account: RunningAccount | undefined;
let world: SimulatedAccount;
let tokens: TaskTokens;
let dynamoEndpoint: string;
let sequence = 0;

beforeAll(async () => {
  account = await startSimulatedAccount({ motoEndpoint: inject('motoEndpoint'), bucket: BUCKET, table: TABLE });
  ({ world, tokens, dynamoEndpoint } = account);
  await world.put(`bundles/${'a'.repeat(64)}.tar.gz`, 'tarball');
});
afterAll(async () => {
  await account?.close();
});

const ActionSchema = z.looseObject({ action: z.string() });

interface Scenario {
  spec?: Partial<RunSpecInput>;
  /** The agents of attempts 1, 2, …; attempt 1 is warned as soon as it trains. */
  agent: AgentBehaviour[];
  /** Before the warning reaches attempt 1. */
  beforeWarning?: () => void;
  /** After each prepare-replacement step, with the step's action: where a race is injected. */
  afterStep?: (action: string, runId: string) => Promise<void>;
  /** After prepare-replacement ended, before the warned agent calls back. */
  beforeCallback?: (runId: string) => Promise<void>;
  /** The warned agent calls back as soon as the run record satisfies this, without waiting for prepare-replacement to end. */
  callBackWhen?: (record: RunRecord) => boolean;
  /** HeartbeatSeconds of the run's AwaitReplacement wait, in ms (default: the ASL's). */
  replacementWaitHeartbeatMs?: number;
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let i = 0; i < 2000; i += 1) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Runs train-run with a spot warning on attempt 1, and the prepare-replacement execution it starts. */
async function runWithWarning(scenario: Scenario) {
  sequence += 1;
  const runId = `r-prep-${sequence}-${Date.now().toString(36)}`;
  const owner = 'arn:aws:iam::123456789012:user/alice';
  const rawSpec: RunSpecInput = {
    name: 'mnist',
    code: { bundle: `s3://${BUCKET}/bundles/${'a'.repeat(64)}.tar.gz`, entrypoint: 'train.py' },
    hyperparameters: { epochs: 2 },
    instance: { types: ['g5.xlarge', 'g6.xlarge'], ami: 'ami-0abc1234', spot: true },
    data: DATA,
    ...scenario.spec,
  };
  const now = new Date().toISOString();
  await world.store.create({
    runId, owner, spec: parseRunSpec(rawSpec), specHash: 'h', status: 'PENDING',
    createdAt: now, updatedAt: now, attempts: [], costUsd: 0, interruptions: 0, userFailures: 0,
  });
  const deps = world.deps();

  // The run's AwaitReplacement wait is answered at the train-run machine's own task-token registry.
  const prepareHandler = prepareReplacement.createHandler({ ...deps, signals: new DynamoAttemptSignals(dynamoDocumentClient(dynamoEndpoint), TABLE), tasks: new LocalExecutions(() => {
      throw new Error('prepare-replacement starts no execution');
    }, tokens) });
  const prepareMachine = new LocalStateMachine({
    definition: loadAsl('prepare-replacement', localLambdaArn),
    lambdas: {
      PrepareReplacementLambdaFunction: async (event, context) => {
        const answer = await prepareHandler(event, context);
        await scenario.afterStep?.(ActionSchema.parse(event).action, runId);
        return answer;
      },
    },
    stateMachineName: 'prepare-replacement',
    fastWaits: true,
  });
  const prepared: LocalExecution[] = [];
  const routerErrors: unknown[] = [];
  const router = new EventRouter({ logError: (_message, error) => routerErrors.push(error) });
  router.on(
    EC2_DETAIL_TYPE.spotInterruptionWarning,
    spotWarning.createHandler({
      instances: new Ec2InstanceTags(world.ec2, TEST_STACK),
      signals: new DynamoAttemptSignals(dynamoDocumentClient(dynamoEndpoint), TABLE),
      store: world.store,
      compute: deps.compute,
    }),
    'spot-warning',
    { onSuccessToBus: true },
  );
  router.on(
    { source: ['lambda'], 'detail-type': [LAMBDA_SUCCESS_DETAIL_TYPE], detail: { responsePayload: { action: ['checkpoint-requested'] } } },
    (event) => {
      const execution = prepareMachine.start(event);
      prepared.push(execution);
      return Promise.resolve({ executionArn: execution.executionArn });
    },
    'prepare-replacement',
  );

  let prepareOutcome: ExecutionOutcome | undefined;
  /** The run record as prepare-replacement left it, before the warned agent called back. */
  let whenPrepared: RunRecord | undefined;
  world.agent = scenario.agent;
  world.onAgentStart = async ({ runId: id, attempt, instanceId }) => {
    if (id !== runId || attempt !== 1) return;
    // The warning lands mid-training: after LaunchTraining has handed the attempt over.
    await until('attempt 1 training', async () => ((await world.store.get(runId))?.status === 'TRAINING' ? true : undefined));
    scenario.beforeWarning?.();
    await router.emitSpotInterruptionWarning(instanceId);
    const execution = await until('prepare-replacement started', () => prepared[0]);
    const callBackWhen = scenario.callBackWhen;
    if (callBackWhen !== undefined) {
      await until('the moment to call back', async () => {
        const record = await world.store.get(runId);
        return record !== undefined && callBackWhen(record) ? true : undefined;
      });
    } else {
      prepareOutcome = await execution.outcome;
      whenPrepared = await world.store.get(runId);
      await scenario.beforeCallback?.(runId);
    }
  };

  const trainRun = new LocalStateMachine({
    definition: loadAsl('train-run', localLambdaArn),
    lambdas: trainRunLambdas(world, { ...deps, catalog: world.catalog, volumes: world.volumeDeps().volumes }, () => Promise.reject(new Error('these runs build no image'))),
    tokens,
    fastWaits: true,
    heartbeatOverridesMs: scenario.replacementWaitHeartbeatMs === undefined ? undefined : { AwaitReplacement: scenario.replacementWaitHeartbeatMs },
  });
  try {
    const trainExecution = trainRun.start({ runId, owner, spec: rawSpec }, runId);
    const outcome = await trainExecution.outcome;
    const trainStates = trainExecution.statesEntered();
    const execution = prepared[0];
    if (execution !== undefined) prepareOutcome = await execution.outcome;
    const record = await world.store.get(runId);
    const instances = [...world.instances.values()].filter((i) => i.tags['runctl:run'] === runId);
    const prepareRetried = (execution?.history ?? []).flatMap((e) => (e.type === 'StateRetried' && 'state' in e ? [e.state.name] : []));
    return { runId, outcome, trainStates, record, whenPrepared, prepareOutcome, prepareStates: execution?.statesEntered() ?? [], prepareRetried, instances, routerErrors };
  } finally {
    world.onAgentStart = undefined;
  }
}

describe('prepare-replacement state machine', () => {
  it('launches attempt 2 on the warning, waits until it is online, copies the data, and the run adopts it', async () => {
    const { outcome, record, whenPrepared, prepareOutcome, prepareStates, instances, routerErrors } = await runWithWarning({
      agent: [{ kind: 'interrupt' }, { kind: 'succeed' }],
      afterStep: async (action) => {
        // Still booting at the first look, online at the second.
        if (action === 'launch') world.ssmOnline = false;
        if (action === 'check') world.ssmOnline = true;
      },
    });

    expect(routerErrors).toEqual([]);
    expect(prepareOutcome?.status).toBe('SUCCEEDED');
    expect(prepareStates.filter((s) => s === 'CheckReplacement')).toHaveLength(2);
    expect(prepareStates).toEqual(expect.arrayContaining(['LaunchReplacement', 'CopyData', 'CheckCopy', 'Done']));
    expect(prepareStates).not.toContain('AbandonReplacement');
    // Before the warned attempt reported its checkpoint: the replacement is ready and on the record.
    const replacement = whenPrepared?.attempts.at(-1)?.replacement;
    expect(whenPrepared?.attempts).toHaveLength(1);
    expect(replacement).toMatchObject({ attempt: 2, spot: true });
    expect(replacement?.readyAt).toBeDefined();
    expect(replacement?.dataReadyAt).toBeDefined();
    expect(replacement?.releasedAt).toBeUndefined();
    const launchedForTwo = instances.filter((i) => i.tags['runctl:attempt'] === '2');
    expect(launchedForTwo.map((i) => i.id)).toEqual([replacement?.instanceId]);
    // Reclaimed capacity goes last: attempt 1 ran on g5.xlarge, its replacement on g6.xlarge.
    expect(record?.attempts[0]?.instanceType).toBe('g5.xlarge');
    expect(replacement?.instanceType).toBe('g6.xlarge');

    expect(outcome.status).toBe('SUCCEEDED');
    expect(record?.status).toBe('SUCCEEDED');
    expect(record?.interruptions).toBe(1);
    expect(record?.attempts).toMatchObject([
      { attempt: 1, endReason: 'SPOT_INTERRUPTED' },
      { attempt: 2, instanceId: replacement?.instanceId, endReason: 'SUCCEEDED' },
    ]);
    expect(record?.attempts[1]?.resumeFrom).toMatch(/\/checkpoints\/0001-000003\/$/);
    // The data went onto the replacement once, by prepare-replacement: the run's PrefetchData found it copied.
    const copies = world.commandLog.filter((c) => c.instanceId === replacement?.instanceId && c.comment?.startsWith('runctl prefetch'));
    expect(copies).toHaveLength(1);
    expect(copies[0]?.comment).toContain('(replacement)');
    expect(instances).toHaveLength(2);
    expect(instances.filter((i) => i.state !== 'terminated')).toEqual([]);
  });

  it('the checkpoint complete while the replacement still boots: the run waits for it and goes on the moment its data is copied', async () => {
    const { outcome, trainStates, record, prepareOutcome, prepareStates, instances } = await runWithWarning({
      agent: [{ kind: 'interrupt' }, { kind: 'succeed' }],
      // The old agent reports at once: the run reaches attempt 2 while the replacement is still booting.
      callBackWhen: (r) => r.attempts[0]?.replacement !== undefined,
      afterStep: async (action, runId) => {
        if (action === 'launch') world.ssmOnline = false;
        // Online only once the run waits for it, its token on the record.
        if (action === 'check') {
          await until('the run waiting for its replacement', async () => ((await world.store.get(runId))?.replacementToken === undefined ? undefined : true));
          world.ssmOnline = true;
        }
      },
    });

    expect(prepareOutcome?.status).toBe('SUCCEEDED');
    expect(prepareStates).toEqual(expect.arrayContaining(['CheckReplacement', 'CopyData', 'CheckCopy', 'Done']));
    expect(outcome.status).toBe('SUCCEEDED');
    // Answered by prepare-replacement: no readiness check or prefetch poll of the run's own for attempt 2.
    const second = trainStates.slice(trainStates.indexOf('DecideRecovery'));
    expect(second).toEqual(expect.arrayContaining(['AwaitReplacement', 'AdoptReplacement', 'LaunchTraining']));
    expect(second).not.toContain('CheckInstance');
    expect(second).not.toContain('CheckPrefetch');
    const replacement = record?.attempts[0]?.replacement;
    expect(replacement?.dataReadyAt).toBeDefined();
    expect(record?.replacementToken).toBeUndefined();
    expect(record?.attempts[1]).toMatchObject({ attempt: 2, instanceId: replacement?.instanceId, endReason: 'SUCCEEDED' });
    expect(Date.parse(record?.attempts[1]?.trainingStartedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(replacement?.dataReadyAt ?? ''));
    // One copy onto the replacement: prepare-replacement's.
    const copies = world.commandLog.filter((c) => c.instanceId === replacement?.instanceId && c.comment?.startsWith('runctl prefetch'));
    expect(copies).toHaveLength(1);
    expect(instances).toHaveLength(2);
    expect(instances.filter((i) => i.state !== 'terminated')).toEqual([]);
  });

  it('a preparer that goes silent mid-copy: the wait ends at its heartbeat timeout and the run adopts the replacement, waiting for that copy', async () => {
    const { outcome, trainStates, record, prepareOutcome, prepareStates, instances } = await runWithWarning({
      agent: [{ kind: 'interrupt' }, { kind: 'succeed' }],
      callBackWhen: (r) => r.attempts[0]?.replacement?.copyCommandId !== undefined,
      // prepare-replacement's next step comes only after the run trains on the replacement: no heartbeat meanwhile.
      replacementWaitHeartbeatMs: 300,
      afterStep: async (action, runId) => {
        if (action === 'copy') await until('attempt 2 training', async () => ((await world.store.get(runId))?.attempts[1]?.trainingStartedAt === undefined ? undefined : true));
      },
    });

    expect(outcome.status).toBe('SUCCEEDED');
    const second = trainStates.slice(trainStates.indexOf('DecideRecovery'));
    expect(second).toEqual(expect.arrayContaining(['AwaitReplacement', 'AdoptReplacement', 'CheckPrefetch', 'LaunchTraining']));
    expect(prepareOutcome?.status).toBe('SUCCEEDED');
    expect(prepareStates).toContain('CheckCopy');
    const replacement = record?.attempts[0]?.replacement;
    expect(replacement?.dataReadyAt).toBeUndefined();
    expect(replacement?.releasedAt).toBeUndefined();
    expect(record?.attempts[1]).toMatchObject({ attempt: 2, instanceId: replacement?.instanceId, endReason: 'SUCCEEDED' });
    // One copy onto the replacement: prepare-replacement's, which the run's PrefetchData waited for.
    const copies = world.commandLog.filter((c) => c.instanceId === replacement?.instanceId && c.comment?.startsWith('runctl prefetch'));
    expect(copies).toHaveLength(1);
    expect(instances).toHaveLength(2);
    expect(instances.filter((i) => i.state !== 'terminated')).toEqual([]);
  });

  it('a replacement given up while the run waits for it: the wait is answered at once and the run launches attempt 2 itself', async () => {
    const { outcome, trainStates, record, prepareStates, instances } = await runWithWarning({
      agent: [{ kind: 'interrupt' }, { kind: 'succeed' }],
      callBackWhen: (r) => r.attempts[0]?.replacement !== undefined,
      afterStep: async (action, runId) => {
        if (action === 'launch') {
          world.ssmOnline = false;
          await until('the run waiting for its replacement', async () => ((await world.store.get(runId))?.replacementToken === undefined ? undefined : true));
          // SSM refuses from now on: prepare-replacement abandons (terminates) the replacement.
          world.ssmDescribeError = awsError('AccessDeniedException', 'not authorized to perform ssm:DescribeInstanceInformation');
        }
        if (action === 'abandon') {
          world.ssmDescribeError = undefined;
          world.ssmOnline = true;
        }
      },
      // Long enough that only prepare-replacement's answer can end the wait within the test.
      replacementWaitHeartbeatMs: 600_000,
    });

    expect(prepareStates).toContain('AbandonReplacement');
    const replacement = record?.attempts[0]?.replacement;
    expect(replacement?.releasedAt).toBeDefined();
    expect(trainStates).toEqual(expect.arrayContaining(['AwaitReplacement', 'AdoptReplacement']));
    expect(outcome.status).toBe('SUCCEEDED');
    expect(record?.replacementToken).toBeUndefined();
    expect(record?.attempts[1]?.instanceId).toBeDefined();
    expect(record?.attempts[1]?.instanceId).not.toBe(replacement?.instanceId);
    expect(instances.filter((i) => i.tags['runctl:attempt'] === '2')).toHaveLength(2);
    expect(instances.filter((i) => i.state !== 'terminated')).toEqual([]);
  });

  it('a cancel while the run waits for its replacement ends the wait at once: CANCELLED, both instances released', async () => {
    const owner = 'arn:aws:iam::123456789012:user/alice';
    const executions = new LocalExecutions(() => {
      throw new Error('the cancel starts no execution');
    }, tokens);
    const { outcome, trainStates, record, prepareStates, instances } = await runWithWarning({
      agent: [{ kind: 'interrupt' }],
      callBackWhen: (r) => r.attempts[0]?.replacement !== undefined,
      afterStep: async (action, runId) => {
        if (action === 'launch') {
          world.ssmOnline = false;
          await until('the run waiting for its replacement', async () => ((await world.store.get(runId))?.replacementToken === undefined ? undefined : true));
          // POST /runs/{id}/cancel, as the owner sends it.
          await cancelRun({ owner, runId, body: {} }, { store: world.store, executions, compute: world.deps().compute, clock: () => new Date() });
        }
        // prepare-replacement looks again only once the run has ended: the cancel alone ended the wait.
        if (action === 'check') {
          await until('the run ended', async () => (isTerminal((await world.store.get(runId))?.status ?? 'PENDING') ? true : undefined));
          world.ssmOnline = true;
        }
      },
      replacementWaitHeartbeatMs: 600_000,
    });

    expect(outcome.status).toBe('FAILED');
    expect(record?.status).toBe('CANCELLED');
    expect(trainStates).toEqual(expect.arrayContaining(['AwaitReplacement', 'AdoptReplacement', 'ReleaseResources']));
    expect(record?.attempts).toHaveLength(1);
    expect(record?.replacementToken).toBeUndefined();
    expect(prepareStates.filter((state) => state === 'CheckReplacement')).toHaveLength(1);
    expect(record?.attempts[0]?.replacement?.releasedAt).toBeDefined();
    expect(instances).toHaveLength(2);
    expect(instances.filter((i) => i.state !== 'terminated')).toEqual([]);
  });

  it('terminates the replacement and records releasedAt when the run is cancelled before the replacement is ready', async () => {
    const { outcome, record, whenPrepared, prepareOutcome, prepareStates, instances } = await runWithWarning({
      agent: [{ kind: 'interrupt' }, { kind: 'succeed' }],
      afterStep: async (action, runId) => {
        if (action !== 'launch') return;
        // The owner cancels as the replacement boots (POST /runs/{id}/cancel moves the run to CANCELLING).
        await world.store.transition(runId, 'CHECKPOINTING', 'CANCELLING', { cancelRequested: { at: new Date().toISOString(), force: false } });
      },
    });

    expect(prepareOutcome?.status).toBe('SUCCEEDED');
    expect(prepareStates).toContain('CheckReplacement');
    expect(prepareStates).not.toContain('CopyData');
    const replacement = whenPrepared?.attempts[0]?.replacement;
    expect(replacement?.releasedAt).toBeDefined();
    expect(replacement?.readyAt).toBeUndefined();
    // prepare-replacement itself terminated it: the run's ReleaseResources had not run yet.
    expect(world.instances.get(replacement?.instanceId ?? '')?.state).toBe('terminated');

    expect(outcome.status).toBe('FAILED');
    expect(record?.status).toBe('CANCELLED');
    expect(record?.attempts).toHaveLength(1);
    expect(instances).toHaveLength(2);
    expect(instances.filter((i) => i.state !== 'terminated')).toEqual([]);
  });

  it('releases the replacement when the warned attempt finishes training and the run ends before the replacement is ready', async () => {
    const { outcome, record, prepareOutcome, prepareStates, instances } = await runWithWarning({
      agent: [{ kind: 'succeed' }],
      callBackWhen: (record) => record.attempts[0]?.replacement !== undefined,
      afterStep: async (action, runId) => {
        // The script's last epoch was done: the run finalizes and ends while the replacement boots.
        if (action === 'launch') await until('the run ended', async () => ((await world.store.get(runId))?.status === 'SUCCEEDED' ? true : undefined));
      },
    });

    expect(outcome.status).toBe('SUCCEEDED');
    expect(prepareOutcome?.status).toBe('SUCCEEDED');
    expect(prepareStates).not.toContain('CopyData');
    expect(record?.status).toBe('SUCCEEDED');
    expect(record?.interruptions).toBe(0);
    expect(record?.attempts).toHaveLength(1);
    expect(record?.attempts[0]?.endReason).toBe('SUCCEEDED');
    const replacement = record?.attempts[0]?.replacement;
    expect(replacement).toMatchObject({ attempt: 2 });
    expect(replacement?.releasedAt).toBeDefined();
    expect(world.instances.get(replacement?.instanceId ?? '')?.state).toBe('terminated');
    expect(instances.filter((i) => i.state !== 'terminated')).toEqual([]);
  });

  it('launches nothing when no type has capacity, and the run then launches attempt 2 itself after the checkpoint', async () => {
    const { outcome, record, whenPrepared, prepareOutcome, prepareStates, instances } = await runWithWarning({
      agent: [{ kind: 'interrupt' }, { kind: 'succeed' }],
      beforeWarning: () => {
        world.noCapacity = new Set(['g5.xlarge', 'g6.xlarge']);
      },
      beforeCallback: async () => {
        world.noCapacity = new Set();
      },
    });

    expect(prepareOutcome?.status).toBe('SUCCEEDED');
    expect(prepareStates).toEqual(['ReadWarning', 'LaunchReplacement', 'IsReplacementLaunched', 'Done']);
    expect(whenPrepared?.attempts[0]?.replacement).toBeUndefined();
    expect(instances.filter((i) => i.tags['runctl:attempt'] === '2')).toHaveLength(1);

    expect(outcome.status).toBe('SUCCEEDED');
    expect(record?.status).toBe('SUCCEEDED');
    expect(record?.interruptions).toBe(1);
    expect(record?.attempts).toMatchObject([
      { attempt: 1, endReason: 'SPOT_INTERRUPTED' },
      { attempt: 2, endReason: 'SUCCEEDED' },
    ]);
    expect(record?.attempts[0]?.replacement).toBeUndefined();
    expect(instances).toHaveLength(2);
    expect(instances.filter((i) => i.state !== 'terminated')).toEqual([]);
  });

  it('retries a throttled RunInstances and still has one instance for attempt 2', async () => {
    const { outcome, record, whenPrepared, prepareOutcome, prepareRetried, prepareStates, instances } = await runWithWarning({
      agent: [{ kind: 'interrupt' }, { kind: 'succeed' }],
      // More throttles than the adapter's own retries: the error reaches the ASL's Retry.
      beforeWarning: () => {
        world.throttleRunInstances = 4;
      },
    });

    expect(prepareOutcome?.status).toBe('SUCCEEDED');
    expect(prepareRetried).toEqual(['LaunchReplacement']);
    expect(prepareStates).not.toContain('AbandonReplacement');
    const replacement = whenPrepared?.attempts[0]?.replacement;
    expect(replacement?.dataReadyAt).toBeDefined();
    expect(outcome.status).toBe('SUCCEEDED');
    expect(record?.attempts[1]?.instanceId).toBe(replacement?.instanceId);
    expect(instances.filter((i) => i.tags['runctl:attempt'] === '2')).toHaveLength(1);
    expect(instances.filter((i) => i.state !== 'terminated')).toEqual([]);
  });

  it('releases the replacement when an AWS call keeps failing, and the run launches attempt 2 itself', async () => {
    const { outcome, record, whenPrepared, prepareOutcome, prepareStates, instances } = await runWithWarning({
      agent: [{ kind: 'interrupt' }, { kind: 'succeed' }],
      afterStep: async (action) => {
        if (action === 'launch') world.ssmDescribeError = awsError('AccessDeniedException', 'not authorized to perform ssm:DescribeInstanceInformation');
      },
      beforeCallback: async () => {
        world.ssmDescribeError = undefined;
      },
    });

    expect(prepareOutcome?.status).toBe('SUCCEEDED');
    expect(prepareStates).toContain('AbandonReplacement');
    expect(prepareStates).not.toContain('CopyData');
    const replacement = whenPrepared?.attempts[0]?.replacement;
    expect(replacement?.releasedAt).toBeDefined();
    expect(world.instances.get(replacement?.instanceId ?? '')?.state).toBe('terminated');

    expect(outcome.status).toBe('SUCCEEDED');
    expect(record?.status).toBe('SUCCEEDED');
    const second = record?.attempts[1];
    expect(second?.instanceId).toBeDefined();
    expect(second?.instanceId).not.toBe(replacement?.instanceId);
    expect(instances.filter((i) => i.tags['runctl:attempt'] === '2')).toHaveLength(2);
    expect(instances.filter((i) => i.state !== 'terminated')).toEqual([]);
  });
});
