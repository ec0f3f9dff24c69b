import { EC2Client } from '@aws-sdk/client-ec2';
import { SFNClient, SendTaskFailureCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { SSMClient, SendCommandCommand } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as createCancelRun } from '../../../functions/api/cancel-run';
import { createHandler as createCreateRun } from '../../../functions/api/create-run';
import { createHandler as createGetRun } from '../../../functions/api/get-run';
import { createHandler as createListRuns } from '../../../functions/api/list-runs';
import { DynamoRunStore } from '../../../shared/adapters/dynamo-run-store';
import { Ec2Compute } from '../../../shared/adapters/ec2-compute';
import { SfnExecutions } from '../../../shared/adapters/sfn-executions';
import { apiLogger } from '../../../shared/composition/api';
import type { CancelApiDeps } from '../../../shared/composition/api-cancel';
import { ALICE, ALICE_OTHER_SESSION, ALICE_OWNER, BOB, apiEvent, lambdaContext } from '../../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../../support/dynalite';
import { TEST_STACK } from '../../support/stack';

const STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-train-run';

const spec = {
  name: 'resnet',
  code: { bundle: `s3://runctl-runs/bundles/${'a'.repeat(64)}.tar.gz`, entrypoint: 'train.py' },
  hyperparameters: 'epochs=50,lr=0.001,batch_size=32',
  instance: { types: 'g5.xlarge,g6.xlarge' },
};

interface Body {
  [key: string]: unknown;
}

function body(result: { body?: string }): Body {
  return JSON.parse(result.body ?? '{}');
}

describe('runs API handlers', () => {
  let dynalite: RunningDynalite;
  let deps: CancelApiDeps & { runsBucket: string };
  const sfnClient = new SFNClient({ region: 'us-east-1' });
  const sfn = mockClient(sfnClient);
  const ssmClient = new SSMClient({ region: 'us-east-1' });
  const ssm = mockClient(ssmClient);
  const createRun = () => createCreateRun(() => deps);
  const getRun = () => createGetRun(() => deps);
  const listRuns = () => createListRuns(() => deps);

  const post = (payload: unknown, caller = ALICE) =>
    createRun()(apiEvent({ method: 'POST', path: '/runs', routeKey: 'POST /runs', body: payload, caller }), lambdaContext());

  beforeAll(async () => {
    dynalite = await startDynalite();
    const table = `runs-api-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    deps = {
      store: new DynamoRunStore(dynamoDocumentClient(dynalite.endpoint), table),
      executions: new SfnExecutions(sfnClient, STATE_MACHINE),
      compute: new Ec2Compute({ ec2: new EC2Client({ region: 'us-east-1' }), ssm: ssmClient, stack: TEST_STACK, throttleRetry: { attempts: 1, baseMs: 1 } }),
      clock: () => new Date(),
      logger: apiLogger,
      runsBucket: 'runctl-runs',
    };
  });
  afterAll(async () => dynalite.close());
  beforeEach(() => {
    sfn.reset();
    ssm.reset();
    sfn.on(StartExecutionCommand).callsFake((input: { name?: string }) => ({
      executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:${input.name}`,
      startDate: new Date(),
    }));
  });

  it('POST /runs records the run for the caller and starts the execution named after it', async () => {
    const result = await post({ clientToken: 'submit-1', spec });

    expect(result.statusCode).toBe(201);
    const run = body(result);
    expect(run).toMatchObject({ owner: ALICE_OWNER, status: 'PENDING', spec: { name: 'resnet', hyperparameters: { epochs: '50', lr: '0.001', batch_size: '32' } } });
    expect(run).not.toHaveProperty('taskToken');
    const start = sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input;
    expect(start?.name).toBe(run.runId);
    expect(start?.stateMachineArn).toBe(STATE_MACHINE);
    expect(JSON.parse(start?.input ?? '{}')).toMatchObject({ runId: run.runId, owner: ALICE_OWNER, clientToken: 'submit-1' });
    expect(run.executionArn).toMatch(new RegExp(`:execution:runctl-test-train-run:${String(run.runId)}$`));
  });

  it('POST /runs with the same client token and spec returns the same run (200), without a second run', async () => {
    const first = body(await post({ clientToken: 'retry-me', spec }));
    const again = await post({ clientToken: 'retry-me', spec });

    expect(again.statusCode).toBe(200);
    expect(body(again).runId).toBe(first.runId);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(1);
  });

  it('POST /runs with a reused client token and another spec is a 409 that says what to do', async () => {
    await post({ clientToken: 'reused', spec });
    const result = await post({ clientToken: 'reused', spec: { ...spec, name: 'other' } });

    expect(result.statusCode).toBe(409);
    expect(body(result).message).toMatch(/different spec; use a new clientToken/);
  });

  it('the same client token from two owners makes two runs', async () => {
    const alice = body(await post({ clientToken: 'shared-token', spec }));
    const bob = body(await post({ clientToken: 'shared-token', spec }, BOB));

    expect(alice.runId).not.toBe(bob.runId);
  });

  it.each([
    ['a missing spec', { clientToken: 'x' }, 'spec'],
    ['a bad instance type', { spec: { ...spec, instance: { types: ['G5 XL'] } } }, 'spec.instance.types.0'],
    ['a missing code bundle', { spec: { ...spec, code: { entrypoint: 'train.py' } } }, 'spec.code.bundle'],
    ['a relative data target', { spec: { ...spec, data: [{ source: 's3://b/d/', target: 'data' }] } }, 'spec.data.0.target'],
    ['a bad client token', { clientToken: 'has spaces', spec }, 'clientToken'],
  ])('POST /runs answers %s with a 400 naming the field', async (_label, payload, path) => {
    const result = await post(payload);

    expect(result.statusCode).toBe(400);
    const { issues, message } = body(result);
    expect(issues).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    expect(message).toContain(path);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('POST /runs answers malformed JSON and a missing content type with 400s', async () => {
    const malformed = await createRun()(
      apiEvent({ method: 'POST', path: '/runs', routeKey: 'POST /runs', rawBody: '{"spec": ' }),
      lambdaContext(),
    );
    const untyped = await createRun()(
      apiEvent({ method: 'POST', path: '/runs', routeKey: 'POST /runs', body: { spec }, contentType: null }),
      lambdaContext(),
    );

    expect(malformed.statusCode).toBe(400);
    expect(body(malformed).message).toMatch(/not valid JSON/);
    expect(untyped.statusCode).toBe(400);
    expect(body(untyped).message).toMatch(/content-type: application\/json/);
  });

  it('a failure inside is a 500 that shows no internals', async () => {
    sfn.reset();
    sfn.on(StartExecutionCommand).rejects(Object.assign(new Error('arn:aws:iam::123456789012:role/secret is not authorized'), { name: 'AccessDeniedException' }));

    const result = await post({ clientToken: 'boom', spec });

    expect(result.statusCode).toBe(500);
    expect(result.body).not.toMatch(/arn:aws|AccessDenied|at .*\.ts/);
    expect(body(result)).toEqual({ message: expect.stringMatching(/Internal error/), requestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef' });
  });

  it('GET /runs/{id} returns the owner its run and anyone else a 404', async () => {
    const run = body(await post({ clientToken: 'get-me', spec }));
    const get = (caller: string) =>
      getRun()(
        apiEvent({ method: 'GET', path: `/runs/${String(run.runId)}`, routeKey: 'GET /runs/{id}', caller, pathParameters: { id: String(run.runId) } }),
        lambdaContext(),
      );

    const mine = await get(ALICE);
    const theirs = await get(BOB);

    expect(mine.statusCode).toBe(200);
    expect(body(mine).runId).toBe(run.runId);
    expect(theirs.statusCode).toBe(404);
    expect(body(theirs).message).toBe(`Run ${String(run.runId)} not found`);
  });

  it('a run belongs to the role, not to the session name its caller picked; IAM Identity Center users keep their own', async () => {
    const get = (runId: string, caller: string) =>
      getRun()(apiEvent({ method: 'GET', path: `/runs/${runId}`, routeKey: 'GET /runs/{id}', caller, pathParameters: { id: runId } }), lambdaContext());
    const run = body(await post({ clientToken: 'role-owned', spec }));
    // Any session of ml-engineer is the same owner: a chosen session name grants nothing more or less.
    expect((await get(String(run.runId), ALICE_OTHER_SESSION)).statusCode).toBe(200);
    expect((await get(String(run.runId), BOB)).statusCode).toBe(404);

    const SSO_ALICE = 'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_MLEngineer_0123456789abcdef/alice@example.com';
    const SSO_CAROL = 'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_MLEngineer_0123456789abcdef/carol@example.com';
    const ssoRun = body(await post({ clientToken: 'sso-owned', spec }, SSO_ALICE));
    expect((await get(String(ssoRun.runId), SSO_ALICE)).statusCode).toBe(200);
    expect((await get(String(ssoRun.runId), SSO_CAROL)).statusCode).toBe(404);
  });

  it('GET /runs lists only the caller\'s runs, newest first, filtered by status and paginated', async () => {
    const carol = 'arn:aws:iam::123456789012:user/carol';
    for (const token of ['c1', 'c2', 'c3']) await post({ clientToken: token, spec }, carol);
    const list = (query: Record<string, string>) =>
      listRuns()(apiEvent({ method: 'GET', path: '/runs', routeKey: 'GET /runs', caller: carol, query }), lambdaContext());

    const first = body(await list({ limit: '2' }));
    const second = body(await list({ limit: '2', nextToken: String(first.nextToken) }));
    const succeeded = body(await list({ status: 'SUCCEEDED' }));
    const bad = await list({ status: 'DONE', limit: '500' });

    const runs = [...(first.runs as Body[]), ...(second.runs as Body[])];
    expect(runs).toHaveLength(3);
    expect(runs.every((r) => r.owner === carol && r.status === 'PENDING')).toBe(true);
    expect(second.nextToken).toBeUndefined();
    const created = runs.map((r) => String(r.createdAt));
    expect([...created].sort().reverse()).toEqual(created);
    expect(succeeded.runs).toEqual([]);
    expect(bad.statusCode).toBe(400);
    expect(body(bad).issues).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'status' }), expect.objectContaining({ path: 'limit' })]),
    );
  });

  describe('POST /runs/{id}/cancel', () => {
    const TOKEN = 'AQCEAAAAKgAAAAMAAAAAAAAAAX0sample-task-token';
    const cancel = (runId: string, payload?: unknown, caller = ALICE) =>
      createCancelRun(() => deps)(
        apiEvent({ method: 'POST', path: `/runs/${runId}/cancel`, routeKey: 'POST /runs/{id}/cancel', caller, pathParameters: { id: runId }, body: payload }),
        lambdaContext(),
      );

    /** A run that is training attempt 1 on i-0abc with a live task token. */
    async function trainingRun(token: string): Promise<string> {
      const runId = String(body(await post({ clientToken: token, spec })).runId);
      for (const [from, to] of [['PENDING', 'VALIDATING'], ['VALIDATING', 'PROVISIONING'], ['PROVISIONING', 'STARTING'], ['STARTING', 'TRAINING']] as const) {
        await deps.store.transition(runId, from, to);
      }
      await deps.store.appendAttempt(runId, { attempt: 1, instanceId: 'i-0abc1234def567890', instanceType: 'g5.xlarge', availabilityZone: 'us-east-1a', spot: true, startedAt: new Date().toISOString() });
      await deps.store.setTaskToken(runId, 1, TOKEN);
      return runId;
    }

    it('asks the agent of a training run to checkpoint and stop, without the task token in the command', async () => {
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
      const runId = await trainingRun('cancel-train');

      const result = await cancel(runId);

      expect(result.statusCode).toBe(202);
      expect(body(result)).toMatchObject({ status: 'CANCELLING', cancelRequested: { force: false } });
      const sent = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input;
      expect(sent?.InstanceIds).toEqual(['i-0abc1234def567890']);
      const text = JSON.stringify(sent?.Parameters);
      expect(text).toContain('control/stop');
      expect(text).not.toContain(TOKEN);
      expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
      expect((await deps.store.get(runId))?.status).toBe('CANCELLING');
    });

    it('with force fails the waiting task with Run.Cancelled at once', async () => {
      sfn.on(SendTaskFailureCommand).resolves({});
      const runId = await trainingRun('cancel-force');

      const result = await cancel(runId, { force: true });

      expect(result.statusCode).toBe(202);
      const failed = sfn.commandCalls(SendTaskFailureCommand)[0]?.args[0].input;
      expect(failed).toMatchObject({ taskToken: TOKEN, error: 'Run.Cancelled' });
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    });

    it('ends a wait for the replacement launched on the warning with Run.Cancelled, and never shows that token', async () => {
      sfn.on(SendTaskFailureCommand).resolves({});
      const runId = String(body(await post({ clientToken: 'cancel-awaiting', spec })).runId);
      for (const [from, to] of [['PENDING', 'VALIDATING'], ['VALIDATING', 'PROVISIONING'], ['PROVISIONING', 'STARTING'], ['STARTING', 'TRAINING'], ['TRAINING', 'CHECKPOINTING'], ['CHECKPOINTING', 'RECOVERING'], ['RECOVERING', 'PROVISIONING']] as const) {
        await deps.store.transition(runId, from, to);
      }
      const replacement = { attempt: 2, instanceId: 'i-0fedcba987654321f', instanceType: 'g6.xlarge', availabilityZone: 'us-east-1b', spot: true, launchedAt: new Date().toISOString() };
      await deps.store.appendAttempt(runId, { attempt: 1, instanceId: 'i-0abc1234def567890', spot: true, startedAt: new Date().toISOString() });
      await deps.store.updateAttempt(runId, 1, { endedAt: new Date().toISOString(), endReason: 'SPOT_INTERRUPTED', replacement });
      expect(await deps.store.awaitReplacement(runId, 1, replacement.instanceId, 'wait-token')).toBe(true);

      const shown = await getRun()(apiEvent({ method: 'GET', path: `/runs/${runId}`, routeKey: 'GET /runs/{id}', caller: ALICE, pathParameters: { id: runId } }), lambdaContext());
      const result = await cancel(runId);

      expect(JSON.stringify(body(shown))).not.toContain('wait-token');
      expect(body(shown)).not.toHaveProperty('replacementToken');
      expect(result.statusCode).toBe(202);
      expect(sfn.commandCalls(SendTaskFailureCommand).map((c) => c.args[0].input)).toMatchObject([{ taskToken: 'wait-token', error: 'Run.Cancelled' }]);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    });

    it('fails the task when the instance cannot be reached', async () => {
      ssm.on(SendCommandCommand).rejects(Object.assign(new Error('Instances [[i-0abc1234def567890]] not in a valid state'), { name: 'InvalidInstanceId', $metadata: { httpStatusCode: 400 } }));
      sfn.on(SendTaskFailureCommand).resolves({});
      const runId = await trainingRun('cancel-unreachable');

      const result = await cancel(runId);

      expect(result.statusCode).toBe(202);
      expect(sfn.commandCalls(SendTaskFailureCommand)[0]?.args[0].input).toMatchObject({ taskToken: TOKEN, error: 'Run.Cancelled' });
    });

    it('marks a run that is not training yet CANCELLING without touching AWS', async () => {
      const runId = String(body(await post({ clientToken: 'cancel-pending', spec })).runId);

      const result = await cancel(runId);
      const again = await cancel(runId);

      expect(result.statusCode).toBe(202);
      expect(again.statusCode).toBe(202);
      expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
      expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
    });

    it('refuses a finished run (409), another owner\'s run (404) and a bad body (400)', async () => {
      const runId = String(body(await post({ clientToken: 'cancel-done', spec })).runId);
      const other = await cancel(runId, undefined, BOB);
      const bad = await cancel(runId, { force: 'yes' });
      await deps.store.transition(runId, 'PENDING', 'FAILED_PRECHECKS');
      const done = await cancel(runId);

      expect(other.statusCode).toBe(404);
      expect(bad.statusCode).toBe(400);
      expect(body(bad).issues).toEqual([expect.objectContaining({ path: 'force' })]);
      expect(done.statusCode).toBe(409);
      expect(body(done).message).toMatch(/already ended with status FAILED_PRECHECKS/);
    });
  });
});
