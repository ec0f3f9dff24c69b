import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  SFNClient,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  TaskDoesNotExist,
  StartExecutionCommand,
  StopExecutionCommand,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { SfnExecutions } from '../../shared/adapters/sfn-executions';
import { AwsCallFailedError, ThrottledError } from '../../shared/errors';
import { localClientConfig } from '../support/aws-clients';

const definition = JSON.stringify({
  StartAt: 'Wait',
  States: { Wait: { Type: 'Wait', Seconds: 3600, End: true } },
});

describe('SfnExecutions against moto_server', () => {
  const client = new SFNClient(localClientConfig(inject('motoEndpoint')));
  let executions: SfnExecutions;
  let stateMachineArn: string;

  beforeAll(async () => {
    const created = await client.send(
      new CreateStateMachineCommand({
        name: `train-run-${Date.now()}`,
        definition,
        roleArn: 'arn:aws:iam::123456789012:role/runctl-states',
      }),
    );
    stateMachineArn = created.stateMachineArn ?? '';
    executions = new SfnExecutions(client, stateMachineArn);
  });

  it('starts an execution named after the run and reports it running', async () => {
    const started = await executions.start('r-0001', { runId: 'r-0001' });

    expect(started.alreadyStarted).toBe(false);
    expect(started.executionArn).toMatch(/:execution:train-run-\d+:r-0001$/);
    await expect(executions.status(started.executionArn)).resolves.toBe('RUNNING');
    const described = await client.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
    expect(JSON.parse(described.input ?? '{}')).toEqual({ runId: 'r-0001' });
  });

  it('treats a second start of the same run as already started, with the same ARN', async () => {
    const first = await executions.start('r-0002', { runId: 'r-0002' });
    const second = await executions.start('r-0002', { runId: 'r-0002', retried: true });

    expect(second).toEqual({ executionArn: first.executionArn, alreadyStarted: true });
  });

  it('lists the running executions of its machine, and not a stopped one', async () => {
    const running = await executions.start('r-0003', { runId: 'r-0003' });
    const stopped = await executions.start('r-0004', { runId: 'r-0004' });
    await client.send(new StopExecutionCommand({ executionArn: stopped.executionArn }));

    const arns = await executions.running();

    expect(arns.has(running.executionArn)).toBe(true);
    expect(arns.has(stopped.executionArn)).toBe(false);
    expect(await executions.status(stopped.executionArn)).toBe('ABORTED');
  });

  it('reports an unknown execution as undefined', async () => {
    const arn = stateMachineArn.replace(':stateMachine:', ':execution:') + ':r-missing';
    await expect(executions.status(arn)).resolves.toBeUndefined();
  });
});

describe('SfnExecutions error translation', () => {
  const client = new SFNClient({ region: 'us-east-1' });
  const sfn = mockClient(client);
  const executions = new SfnExecutions(client, 'arn:aws:states:us-east-1:123456789012:stateMachine:m');

  it('returns false when failing a task that already timed out', async () => {
    sfn.reset();
    sfn.on(SendTaskFailureCommand).rejects(new TaskTimedOut({ message: 'Task Timed Out', $metadata: { httpStatusCode: 400 } }));

    await expect(executions.failTask('token', 'Instance.Lost', 'gone')).resolves.toBe(false);
  });

  it('relays success and heartbeats, and reports a stale token as false rather than an error', async () => {
    sfn.reset();
    sfn.on(SendTaskSuccessCommand).resolves({});
    sfn.on(SendTaskHeartbeatCommand).rejects(new TaskDoesNotExist({ message: 'Task does not exist', $metadata: { httpStatusCode: 400 } }));

    await expect(executions.succeedTask('token-1', '{"exitCode":0}')).resolves.toBe(true);
    await expect(executions.heartbeatTask('token-2')).resolves.toBe(false);
    expect(sfn.commandCalls(SendTaskSuccessCommand)[0]?.args[0].input).toEqual({ taskToken: 'token-1', output: '{"exitCode":0}' });
    expect(sfn.commandCalls(SendTaskHeartbeatCommand)[0]?.args[0].input).toEqual({ taskToken: 'token-2' });
  });

  it('truncates the cause to the 32,768 characters Step Functions accepts', async () => {
    sfn.reset();
    sfn.on(SendTaskFailureCommand).resolves({});

    await executions.failTask('token', 'Instance.Lost', 'x'.repeat(40_000));

    const call = sfn.commandCalls(SendTaskFailureCommand)[0];
    expect(call?.args[0].input.cause).toHaveLength(32_768);
  });

  it('translates throttling and keeps the SDK error as cause', async () => {
    sfn.reset();
    const throttle = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    sfn.on(StartExecutionCommand).rejects(throttle);

    const error = await executions.start('r-1', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ThrottledError);
    expect(error).toHaveProperty('cause', throttle);
  });

  it('translates other failures into Aws.CallFailed naming the action', async () => {
    sfn.reset();
    sfn.on(StartExecutionCommand).rejects(Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' }));

    await expect(executions.start('r-1', {})).rejects.toThrow(AwsCallFailedError);
    await expect(executions.start('r-1', {})).rejects.toThrow(/StartExecution failed: AccessDeniedException/);
  });
});
