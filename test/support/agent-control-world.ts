import { DescribeInstancesCommand, EC2Client, type DescribeInstancesCommandInput } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { Ec2InstanceStates } from '../../shared/adapters/ec2-instance-states';
import type { PolicyDocument } from '../../shared/domain/run-access';
import type { RunRecord } from '../../shared/domain/run-record';
import { RunSpecSchema } from '../../shared/domain/run-spec';
import { createHandler } from '../../functions/api/agent-control';
import type { AgentControlDeps } from '../../shared/usecases/agent-control';
import { apiEvent, lambdaContext } from './api-events';

/** The agent routes' handler over an in-memory store of run records and recorded task callbacks. */

export const ROLE_ID = 'AROATRAININGROLE0001';
export const INSTANCE_A = 'i-0aaaaaaaaaaaaaaaa';
export const INSTANCE_B = 'i-0bbbbbbbbbbbbbbbb';

export function record(runId: string, instanceId: string, token: string, attempt = 1): RunRecord {
  const now = '2026-12-01T00:00:00.000Z';
  return {
    runId,
    owner: 'arn:aws:iam::123456789012:role/ml-engineer',
    spec: RunSpecSchema.parse({
      name: runId,
      code: { bundle: `s3://runs-bucket/bundles/${'a'.repeat(64)}.tar.gz`, entrypoint: 'train.py' },
      instance: { types: 'g5.xlarge' },
      data: [{ source: 's3://datasets-bucket/imagenet/', target: '/data' }],
    }),
    specHash: 'h',
    status: 'TRAINING',
    createdAt: now,
    updatedAt: now,
    attempts: [{ attempt, instanceId, spot: true, startedAt: now }],
    taskToken: token,
    taskTokenAttempt: attempt,
    costUsd: 0,
    interruptions: 0,
    userFailures: 0,
  };
}

export function agentControlWorld(
  records = new Map<string, RunRecord>([
    ['run-a', record('run-a', INSTANCE_A, 'TOKEN-A')],
    ['run-b', record('run-b', INSTANCE_B, 'TOKEN-B')],
  ]),
  config: Partial<AgentControlDeps['config']> = {},
) {
  const issued: Array<{ sessionName: string; policy: PolicyDocument }> = [];
  const answered: Array<[string, string, string?]> = [];
  const stale = new Set<string>();
  // EC2 as DescribeInstances answers an instance-id filter: the instances it knows, in their state.
  // Every instance runs unless a test sets another state ('gone': EC2 no longer knows it).
  const instanceStates = new Map<string, string>();
  const ec2Client = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIATEST', secretAccessKey: 'test' } });
  const ec2 = mockClient(ec2Client);
  ec2.on(DescribeInstancesCommand).callsFake((input: DescribeInstancesCommandInput) => {
    const ids = input.Filters?.find((f) => f.Name === 'instance-id')?.Values ?? [];
    const known = ids.filter((id) => instanceStates.get(id) !== 'gone');
    return { Reservations: known.length === 0 ? [] : [{ Instances: known.map((id) => ({ InstanceId: id, State: { Name: instanceStates.get(id) ?? 'running' } })) }] };
  });
  const deps: AgentControlDeps = {
    instances: new Ec2InstanceStates(ec2Client, { attempts: 1, baseMs: 1 }),
    store: {
      get: async (runId) => records.get(runId),
      updateAttempt: async (runId, attempt, patch) => {
        const record = records.get(runId);
        if (record !== undefined) records.set(runId, { ...record, attempts: record.attempts.map((a) => (a.attempt === attempt ? { ...a, ...patch } : a)) });
      },
      updateNode: async (runId, attempt, rank, patch) => {
        const record = records.get(runId);
        if (record === undefined) return;
        const attempts = record.attempts.map((a) => (a.attempt === attempt ? { ...a, nodes: a.nodes?.map((n) => (n.rank === rank ? { ...n, ...patch } : n)) } : a));
        records.set(runId, { ...record, attempts });
      },
    },
    credentials: {
      issue: async (sessionName, policy) => {
        issued.push({ sessionName, policy });
        return { accessKeyId: 'ASIARUN', secretAccessKey: 'secret', sessionToken: 'session', expiration: '2026-12-01T01:00:00.000Z' };
      },
    },
    tasks: {
      succeedTask: async (token, output) => (answered.push(['success', token, output]), !stale.has(token)),
      failTask: async (token, error) => (answered.push(['failure', token, error]), !stale.has(token)),
      heartbeatTask: async (token) => (answered.push(['heartbeat', token]), !stale.has(token)),
    },
    config: {
      instanceRoleId: ROLE_ID,
      partition: 'aws',
      region: 'us-east-1',
      accountId: '123456789012',
      runsBucket: 'runs-bucket',
      secretsPrefix: '/runctl/test/secrets',
      ...config,
    },
  };
  const handler = createHandler(() => deps);
  const call = async (action: string, body: unknown, userId = `${ROLE_ID}:${INSTANCE_B}`) => {
    const event = apiEvent({ method: 'POST', path: `/agent/${action}`, routeKey: 'POST /agent/{action}', body, pathParameters: { action } });
    event.requestContext.authorizer.iam.userId = userId;
    const result = await handler(event, lambdaContext());
    return { status: result.statusCode, body: JSON.parse(String(result.body ?? '{}')) as Record<string, unknown> };
  };
  return { call, issued, answered, stale, records, instanceStates, describeCalls: () => ec2.commandCalls(DescribeInstancesCommand) };
}

