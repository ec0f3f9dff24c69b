import { randomInt } from 'node:crypto';
import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  GetScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
  ValidationException,
} from '@aws-sdk/client-scheduler';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { EventBridgeScheduler, targetInput } from '../../shared/adapters/eventbridge-schedules';
import { AwsCallFailedError, RunInvalidError } from '../../shared/errors';

const OPTIONS = {
  groupName: 'default',
  targetArn: 'arn:aws:lambda:us-east-1:123456789012:function:runctl-dev-startScheduledRun',
  roleArn: 'arn:aws:iam::123456789012:role/runctl-dev-scheduler',
  namePrefix: 'runctl-',
};
const ID = 'sch-0123456789abcdef';

describe('EventBridgeScheduler (mocked client)', () => {
  const client = new SchedulerClient({ region: 'us-east-1' });
  const mock = mockClient(client);
  const scheduler = new EventBridgeScheduler(client, OPTIONS);

  beforeEach(() => mock.reset());

  it('creates a schedule that invokes start-scheduled-run with the schedule id and the scheduled time', async () => {
    mock.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn:aws:scheduler:us-east-1:123456789012:schedule/default/runctl-sch-0123456789abcdef' });

    const arn = await scheduler.create({ scheduleId: ID, expression: 'cron(0 3 * * ? *)', timezone: 'Europe/Paris', description: 'nightly' });

    expect(arn).toMatch(/schedule\/default\/runctl-sch-0123456789abcdef$/);
    const input = mock.commandCalls(CreateScheduleCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      Name: 'runctl-sch-0123456789abcdef',
      GroupName: 'default',
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Paris',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
      Target: { Arn: OPTIONS.targetArn, RoleArn: OPTIONS.roleArn, RetryPolicy: { MaximumRetryAttempts: 3 } },
    });
    expect(input?.Target?.Input).toBe('{"scheduleId":"sch-0123456789abcdef","scheduledTime":"<aws.scheduler.scheduled-time>"}');
  });

  it('the target input is JSON once Scheduler substitutes the scheduled time', () => {
    const delivered = targetInput(ID).replace('<aws.scheduler.scheduled-time>', '2026-03-01T03:00:00Z');
    expect(JSON.parse(delivered)).toEqual({ scheduleId: ID, scheduledTime: '2026-03-01T03:00:00Z' });
  });

  it('a create that finds the schedule already there (a retry) returns its ARN', async () => {
    mock.on(CreateScheduleCommand).rejects(new ConflictException({ message: 'exists', Message: 'exists', $metadata: {} }));
    mock.on(GetScheduleCommand).resolves({ Arn: 'arn:existing' });

    await expect(scheduler.create({ scheduleId: ID, expression: 'rate(1 hour)' })).resolves.toBe('arn:existing');
  });

  it('a schedule Scheduler refuses is a RunInvalidError naming the expression', async () => {
    mock.on(CreateScheduleCommand).rejects(new ValidationException({ message: 'Invalid Schedule Expression', Message: 'Invalid Schedule Expression', $metadata: {} }));

    const error = await scheduler.create({ scheduleId: ID, expression: 'cron(0 3 31 2 ? *)' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunInvalidError);
    expect(error).toMatchObject({ issues: [{ path: 'expression' }] });
  });

  it('deleting a schedule that is gone is success; other failures are translated', async () => {
    mock.on(DeleteScheduleCommand).rejectsOnce(new ResourceNotFoundException({ message: 'gone', Message: 'gone', $metadata: {} }));
    await expect(scheduler.delete(ID)).resolves.toBeUndefined();

    mock.on(DeleteScheduleCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } }));
    await expect(scheduler.delete(ID)).rejects.toBeInstanceOf(AwsCallFailedError);
  });
});

describe('EventBridgeScheduler on moto_server', () => {
  const client = new SchedulerClient({
    endpoint: inject('motoEndpoint'),
    region: 'us-east-1',
    credentials: { accessKeyId: `5${String(randomInt(10_000_000_000, 99_999_999_999))}`, secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  const scheduler = new EventBridgeScheduler(client, OPTIONS);

  it('creates, re-creates idempotently, reads back and deletes a schedule', async () => {
    const arn = await scheduler.create({ scheduleId: ID, expression: 'rate(6 hours)', timezone: 'UTC' });
    const again = await scheduler.create({ scheduleId: ID, expression: 'rate(6 hours)', timezone: 'UTC' });

    expect(arn).toMatch(/schedule\/default\/runctl-sch-0123456789abcdef$/);
    expect(again).toBe(arn);
    const stored = await client.send(new GetScheduleCommand({ Name: 'runctl-sch-0123456789abcdef', GroupName: 'default' }));
    expect(stored.ScheduleExpression).toBe('rate(6 hours)');
    expect(stored.Target?.Arn).toBe(OPTIONS.targetArn);
    expect(JSON.parse((stored.Target?.Input ?? '{}').replace('<aws.scheduler.scheduled-time>', 'x'))).toEqual({ scheduleId: ID, scheduledTime: 'x' });

    await scheduler.delete(ID);
    await scheduler.delete(ID);
    const after = await client.send(new GetScheduleCommand({ Name: 'runctl-sch-0123456789abcdef', GroupName: 'default' })).catch((e: unknown) => e);
    expect(after).toBeInstanceOf(ResourceNotFoundException);
  });
});
