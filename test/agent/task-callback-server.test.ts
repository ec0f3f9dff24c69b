import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  TaskTimedOut,
  InvalidToken,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidTokenError,
  startTaskCallbackServer,
  TaskTimedOutError,
  type TaskCallbackServer,
} from '../../local/task-callback-server';

const calls: unknown[][] = [];
let server: TaskCallbackServer;
let sfn: SFNClient;

beforeAll(async () => {
  server = await startTaskCallbackServer({
    success: (token, output) => {
      calls.push(['success', token, output]);
    },
    failure: (token, error, cause) => {
      calls.push(['failure', token, error, cause]);
    },
    heartbeat: (token) => {
      if (token === 'expired') throw new TaskTimedOutError('Task Timed Out');
      if (token === 'unknown') throw new InvalidTokenError('Invalid Token');
      calls.push(['heartbeat', token]);
    },
  });
  sfn = new SFNClient({
    endpoint: server.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
});
afterAll(async () => {
  sfn.destroy();
  await server.close();
});

describe('task callback server', () => {
  it('delegates the three callbacks the AWS SDK sends', async () => {
    await sfn.send(new SendTaskSuccessCommand({ taskToken: 't1', output: '{"exitCode":0}' }));
    await sfn.send(new SendTaskFailureCommand({ taskToken: 't2', error: 'Spot.Interrupted', cause: '{"reason":"imds"}' }));
    await sfn.send(new SendTaskHeartbeatCommand({ taskToken: 't3' }));

    expect(calls).toEqual([
      ['success', 't1', '{"exitCode":0}'],
      ['failure', 't2', 'Spot.Interrupted', '{"reason":"imds"}'],
      ['heartbeat', 't3'],
    ]);
  });

  it('answers TaskTimedOut and InvalidToken in the AWS error shape', async () => {
    await expect(sfn.send(new SendTaskHeartbeatCommand({ taskToken: 'expired' }))).rejects.toBeInstanceOf(TaskTimedOut);
    await expect(sfn.send(new SendTaskHeartbeatCommand({ taskToken: 'unknown' }))).rejects.toBeInstanceOf(InvalidToken);

    const response = await fetch(server.endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'AWSStepFunctions.SendTaskHeartbeat', 'content-type': 'application/x-amz-json-1.0' },
      body: JSON.stringify({ taskToken: 'expired' }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ __type: 'TaskTimedOut', message: 'Task Timed Out' });
  });

  it('refuses operations it does not serve and malformed bodies', async () => {
    const post = (target: string, body: string) =>
      fetch(server.endpoint, { method: 'POST', headers: { 'x-amz-target': target }, body });

    const unknown = await post('AWSStepFunctions.StartExecution', '{}');
    const malformed = await post('AWSStepFunctions.SendTaskSuccess', '{"taskToken":');
    const missing = await post('AWSStepFunctions.SendTaskSuccess', '{"taskToken":"t"}');

    expect([unknown.status, malformed.status, missing.status]).toEqual([400, 400, 400]);
    expect(await unknown.json()).toMatchObject({ __type: 'UnknownOperationException' });
    expect(await malformed.json()).toMatchObject({ __type: 'SerializationException' });
    expect(await missing.json()).toMatchObject({ __type: 'ValidationException' });
  });
});
