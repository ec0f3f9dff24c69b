import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler } from '../../functions/events/start-scheduled-run';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { DynamoScheduleStore } from '../../shared/adapters/dynamo-schedules';
import { SfnExecutions } from '../../shared/adapters/sfn-executions';
import { parseRunSpec } from '../../shared/domain/run-spec';
import type { ScheduleRecord } from '../../shared/ports/schedules';
import { scheduledClientToken, type StartScheduledRunDeps } from '../../shared/usecases/schedules';
import { ALICE, lambdaContext } from '../support/api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';

const STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-train-run';
const ID = 'sch-00000000000000a1';

describe('start-scheduled-run', () => {
  let dynalite: RunningDynalite;
  let deps: StartScheduledRunDeps;
  const sfnClient = new SFNClient({ region: 'us-east-1' });
  const sfn = mockClient(sfnClient);
  const fire = (event: unknown) => createHandler(() => deps)(event, lambdaContext());

  beforeAll(async () => {
    dynalite = await startDynalite();
  });
  afterAll(async () => dynalite.close());

  beforeEach(async () => {
    const table = `scheduled-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    sfn.reset();
    // Step Functions refuses a second execution of the same name, as the real service does.
    const started = new Set<string>();
    sfn.on(StartExecutionCommand).callsFake((input: { name?: string }) => {
      const name = input.name ?? '';
      if (started.has(name)) throw new ExecutionAlreadyExists({ message: 'exists', $metadata: {} });
      started.add(name);
      return { executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:${name}`, startDate: new Date() };
    });
    const documentClient = dynamoDocumentClient(dynalite.endpoint);
    deps = {
      schedules: new DynamoScheduleStore(documentClient, table),
      store: new DynamoRunStore(documentClient, table),
      executions: new SfnExecutions(sfnClient, STATE_MACHINE),
      clock: () => new Date('2026-03-01T03:00:27.000Z'),
      runsBucket: 'runctl-runs',
    };
    const schedule: ScheduleRecord = {
      scheduleId: ID,
      owner: ALICE,
      name: 'nightly',
      expression: 'cron(0 3 * * ? *)',
      spec: parseRunSpec({
        name: 'nightly-resnet',
        code: { bundle: `s3://runctl-runs/bundles/${'a'.repeat(64)}.tar.gz`, entrypoint: 'train.py' },
        instance: { types: 'g5.xlarge' },
        limits: { maxCostUsd: 20 },
      }),
      createdAt: '2026-02-01T00:00:00.000Z',
    };
    await deps.schedules.create(schedule);
  });

  it('submits the stored spec as a run of the schedule\'s owner, tagged with the schedule', async () => {
    const result = await fire({ scheduleId: ID, scheduledTime: '2026-03-01T03:00:00Z' });

    expect(result).toMatchObject({ started: true, created: true, clientToken: 'sch-00000000000000a1.20260301T030000Z' });
    if (!result.started) throw new Error('not started');
    const run = await deps.store.get(result.runId);
    expect(run).toMatchObject({ owner: ALICE, scheduleId: ID, status: 'PENDING', spec: { name: 'nightly-resnet', limits: { maxCostUsd: 20 } } });
    const input = JSON.parse(sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input.input ?? '{}');
    expect(input).toMatchObject({ runId: result.runId, owner: ALICE, scheduleId: ID });
  });

  it('a duplicate delivery of the same firing, even at the same moment, starts one run', async () => {
    const event = { scheduleId: ID, scheduledTime: '2026-03-01T03:00:00Z' };

    const [a, b] = await Promise.all([fire(event), fire(event)]);
    const c = await fire(event);

    const runIds = [a, b, c].map((r) => (r.started ? r.runId : 'none'));
    expect(new Set(runIds).size).toBe(1);
    expect([a, b, c].filter((r) => r.started && r.created)).toHaveLength(1);
    const names = new Set(sfn.commandCalls(StartExecutionCommand).map((call) => call.args[0].input.name));
    expect(names).toEqual(new Set([runIds[0]]));
    expect((await deps.store.listByOwner(ALICE)).items).toHaveLength(1);
  });

  it('the next firing starts the next run', async () => {
    const first = await fire({ scheduleId: ID, scheduledTime: '2026-03-01T03:00:00Z' });
    const second = await fire({ scheduleId: ID, scheduledTime: '2026-03-02T03:00:00Z' });

    expect(first.started && second.started && first.runId !== second.runId).toBe(true);
    expect((await deps.store.listByOwner(ALICE)).items).toHaveLength(2);
  });

  it('an invocation by hand without a scheduled time counts as the current minute', async () => {
    const result = await fire({ scheduleId: ID });

    expect(result).toMatchObject({ started: true, clientToken: scheduledClientToken(ID, new Date('2026-03-01T03:00:00Z')) });
  });

  it('a deleted schedule starts nothing', async () => {
    await deps.schedules.delete(ID);

    await expect(fire({ scheduleId: ID, scheduledTime: '2026-03-01T03:00:00Z' })).resolves.toEqual({
      started: false,
      reason: `Schedule ${ID} no longer exists`,
    });
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('a malformed event is refused naming the field', async () => {
    await expect(fire({ scheduleId: 'nope' })).rejects.toMatchObject({ name: 'Run.Invalid', issues: [{ path: 'scheduleId' }] });
  });
});
