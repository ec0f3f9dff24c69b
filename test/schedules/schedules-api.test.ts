import { CreateScheduleCommand, DeleteScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as createCreateSchedule } from '../../functions/api/create-schedule';
import { createHandler as createDeleteSchedule } from '../../functions/api/delete-schedule';
import { createHandler as createListSchedules } from '../../functions/api/list-schedules';
import { DynamoScheduleStore } from '../../shared/adapters/dynamo-schedules';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { EventBridgeScheduler } from '../../shared/adapters/eventbridge-schedules';
import { ownerSecretsPath } from '../../shared/domain/run-access';
import { expressionProblem, type ScheduleApiDeps } from '../../shared/usecases/schedules';
import { ALICE, ALICE_OWNER, BOB, apiEvent, lambdaContext } from '../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';

const spec = {
  name: 'nightly-resnet',
  code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' },
  instance: { types: 'g5.xlarge' },
};

function body(result: { body?: string }): Record<string, unknown> {
  return JSON.parse(result.body ?? '{}');
}

describe('expressionProblem', () => {
  it.each([
    ['cron(0 3 * * ? *)', undefined],
    ['cron(0/15 8-18 ? * MON-FRI *)', undefined],
    ['cron(0 12 L * ? 2026)', undefined],
    ['rate(1 hour)', undefined],
    ['rate(6 hours)', undefined],
    ['rate(1 hours)', /singular/],
    ['rate(5 minute)', /plural/],
    ['rate(0 minutes)', /at least 1/],
    ['cron(0 3 * * *)', /six fields/],
    ['cron(0 3 * * MON *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 3 ? * ? *)', /exactly one/],
    ['cron(0 25h * * ? *)', /hours/],
    ['every day at 3', /must be "cron/],
    ['at(2026-01-01T00:00:00)', /must be "cron/],
  ])('%s', (expression, expected) => {
    const problem = expressionProblem(expression);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });
});

describe('schedules API handlers', () => {
  let dynalite: RunningDynalite;
  let deps: ScheduleApiDeps;
  let tableName = '';
  const schedulerClient = new SchedulerClient({ region: 'us-east-1' });
  const scheduler = mockClient(schedulerClient);

  const post = (payload: unknown, caller = ALICE) =>
    createCreateSchedule(() => deps)(
      apiEvent({ method: 'POST', path: '/schedules', routeKey: 'POST /schedules', body: payload, caller }),
      lambdaContext(),
    );
  const list = (caller = ALICE, query?: Record<string, string>) =>
    createListSchedules(() => deps)(apiEvent({ method: 'GET', path: '/schedules', routeKey: 'GET /schedules', caller, query }), lambdaContext());
  const remove = (id: string, caller = ALICE) =>
    createDeleteSchedule(() => deps)(
      apiEvent({ method: 'DELETE', path: `/schedules/${id}`, routeKey: 'DELETE /schedules/{id}', caller, pathParameters: { id } }),
      lambdaContext(),
    );

  beforeAll(async () => {
    dynalite = await startDynalite();
  });
  afterAll(async () => dynalite.close());

  beforeEach(async () => {
    const table = `schedules-api-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    scheduler.reset();
    scheduler.on(CreateScheduleCommand).callsFake((input: { Name?: string }) => ({
      ScheduleArn: `arn:aws:scheduler:us-east-1:123456789012:schedule/default/${input.Name}`,
    }));
    scheduler.on(DeleteScheduleCommand).resolves({});
    deps = {
      schedules: new DynamoScheduleStore(dynamoDocumentClient(dynalite.endpoint), table),
      scheduler: new EventBridgeScheduler(schedulerClient, {
        groupName: 'default',
        targetArn: 'arn:aws:lambda:us-east-1:123456789012:function:startScheduledRun',
        roleArn: 'arn:aws:iam::123456789012:role/scheduler',
        namePrefix: 'runctl-',
      }),
      clock: () => new Date(),
      secretsPrefix: '/runctl/test/secrets',
    };
    tableName = table;
  });

  it('POST /schedules stores the normalised spec for the caller and creates the EventBridge schedule', async () => {
    const result = await post({ name: 'nightly', expression: 'cron(0 3 * * ? *)', timezone: 'Europe/Paris', spec });

    expect(result.statusCode).toBe(201);
    const created = body(result);
    expect(created).toMatchObject({
      owner: ALICE_OWNER,
      name: 'nightly',
      expression: 'cron(0 3 * * ? *)',
      timezone: 'Europe/Paris',
      spec: { name: 'nightly-resnet', instance: { types: ['g5.xlarge'], spot: true } },
    });
    expect(created.scheduleId).toMatch(/^sch-[0-9a-f]{16}$/);
    expect(created.schedulerArn).toBe(`arn:aws:scheduler:us-east-1:123456789012:schedule/default/runctl-${String(created.scheduleId)}`);
    const input = scheduler.commandCalls(CreateScheduleCommand)[0]?.args[0].input;
    expect(input?.ScheduleExpressionTimezone).toBe('Europe/Paris');
    expect(input?.Target?.Input).toContain(`"scheduleId":"${String(created.scheduleId)}"`);
  });

  it.each([
    ['a bad expression', { name: 'n', expression: 'every night', spec }, 'expression'],
    ['a cron with both day fields', { name: 'n', expression: 'cron(0 3 1 * MON *)', spec }, 'expression'],
    ['a bad time zone', { name: 'n', expression: 'rate(1 day)', timezone: 'Mars/Olympus', spec }, 'timezone'],
    ['a missing name', { expression: 'rate(1 day)', spec }, 'name'],
    ['a missing spec', { name: 'n', expression: 'rate(1 day)' }, 'spec'],
    ['a bad spec field', { name: 'n', expression: 'rate(1 day)', spec: { ...spec, instance: { types: ['G5 XL'] } } }, 'spec.instance.types.0'],
    ['a secret outside the owner path', { name: 'n', expression: 'rate(1 day)', spec: { ...spec, secrets: { WANDB_API_KEY: 'ssm:/prod/wandb-key' } } }, 'spec.secrets.WANDB_API_KEY'],
  ])('POST /schedules answers %s with a 400 naming the field', async (_label, payload, path) => {
    const result = await post(payload);

    expect(result.statusCode).toBe(400);
    expect(body(result).issues).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
  });

  it("POST /schedules keeps a secret under the owner's path, as a reference", async () => {
    const secrets = { WANDB_API_KEY: `ssm:${ownerSecretsPath('/runctl/test/secrets', ALICE_OWNER)}wandb-key` };
    const result = await post({ name: 'nightly', expression: 'rate(1 day)', spec: { ...spec, secrets } });

    expect(result.statusCode).toBe(201);
    expect(body(result)).toMatchObject({ spec: { secrets } });
  });

  it('a schedule EventBridge refuses to create leaves no record behind', async () => {
    scheduler.on(CreateScheduleCommand).rejects(Object.assign(new Error('quota'), { name: 'ServiceQuotaExceededException', $metadata: { httpStatusCode: 402 } }));

    const result = await post({ name: 'nightly', expression: 'rate(1 day)', spec });

    expect(result.statusCode).toBe(500);
    expect(body(await list()).schedules).toEqual([]);
  });

  it('GET /schedules lists only the caller\'s schedules, newest first, and pages', async () => {
    const first = body(await post({ name: 'one', expression: 'rate(1 day)', spec }));
    const second = body(await post({ name: 'two', expression: 'rate(2 days)', spec }));
    await post({ name: 'bobs', expression: 'rate(1 day)', spec }, BOB);

    const page1 = body(await list(ALICE, { limit: '1' }));
    const page2 = body(await list(ALICE, { limit: '1', nextToken: String(page1.nextToken) }));
    const all = body(await list());

    const ids = (page: Record<string, unknown>) => (Array.isArray(page.schedules) ? page.schedules.map((s: { scheduleId: string }) => s.scheduleId) : []);
    expect(new Set(ids(all))).toEqual(new Set([first.scheduleId, second.scheduleId]));
    expect([...ids(page1), ...ids(page2)].sort()).toEqual([first.scheduleId, second.scheduleId].map(String).sort());
    expect(body(await list(BOB)).schedules).toHaveLength(1);
  });

  it('GET /schedules refuses a bad limit and a foreign page token with 400s', async () => {
    expect((await list(ALICE, { limit: '0' })).statusCode).toBe(400);
    expect((await list(ALICE, { nextToken: 'bm90IGEgdG9rZW4' })).statusCode).toBe(400);
  });

  it('DELETE /schedules/{id} removes the caller\'s schedule and its EventBridge schedule', async () => {
    const created = body(await post({ name: 'nightly', expression: 'rate(1 day)', spec }));

    const result = await remove(String(created.scheduleId));

    expect(result.statusCode).toBe(204);
    expect(scheduler.commandCalls(DeleteScheduleCommand)[0]?.args[0].input).toEqual({ Name: `runctl-${String(created.scheduleId)}`, GroupName: 'default' });
    expect(body(await list()).schedules).toEqual([]);
    expect((await remove(String(created.scheduleId))).statusCode).toBe(404);
  });

  it('another owner\'s schedule is a 404 and stays', async () => {
    const created = body(await post({ name: 'nightly', expression: 'rate(1 day)', spec }));

    expect((await remove(String(created.scheduleId), BOB)).statusCode).toBe(404);
    expect((await remove('not-an-id', BOB)).statusCode).toBe(404);
    expect(scheduler.commandCalls(DeleteScheduleCommand)).toHaveLength(0);
    expect(body(await list()).schedules).toHaveLength(1);
  });

  it('schedules and runs share the table without showing up in each other\'s listings', async () => {
    await post({ name: 'nightly', expression: 'rate(1 day)', spec });
    const runs = new DynamoRunStore(dynamoDocumentClient(dynalite.endpoint), tableName);

    await expect(runs.listByOwner(ALICE_OWNER)).resolves.toEqual({ items: [] });
  });
});
