import { describe, expect, it } from 'vitest';
import type { NodeState, RunRecord } from '../../../shared/domain/run-record';
import { agentControlWorld, record, ROLE_ID } from '../../support/agent-control-world';

/**
 * The agent routes for the nodes of a multi-node attempt: one task, several agents calling back.
 * What the task is completed with follows the node rule (shared/domain/node-outcome.ts).
 */

const NODES = ['i-0node0000000000a', 'i-0node0000000000b', 'i-0node0000000000c'];
const STARTED = '2026-12-01T00:00:00.000Z';

function nodeRecord(overrides: Partial<RunRecord> = {}): RunRecord {
  const base = record('run-n', NODES[0] ?? '', 'TOKEN-N');
  const nodes: NodeState[] = NODES.map((instanceId, rank) => ({
    rank,
    instanceId,
    instanceType: 'c6i.xlarge',
    availabilityZone: 'us-east-1a',
    spot: true,
    privateIp: `10.0.0.${10 + rank}`,
    launchedForAttempt: 1,
    launchedAt: STARTED,
  }));
  return {
    ...base,
    spec: { ...base.spec, nodes: 3 },
    attempts: [{ attempt: 1, instanceId: NODES[0], spot: true, startedAt: STARTED, trainingStartedAt: new Date().toISOString(), nodes }],
    ...overrides,
  };
}

function nodesWorld(options: { now?: string; window?: number } = {}) {
  const world = agentControlWorld(new Map([['run-n', nodeRecord()]]), { nodeHeartbeatWindowSeconds: options.window ?? 180 });
  const as = (rank: number) => `${ROLE_ID}:${NODES[rank]}`;
  const nodes = () => world.records.get('run-n')?.attempts[0]?.nodes ?? [];
  return { ...world, as, nodes };
}

const failureOf = (rank: number) => JSON.stringify({ exitCode: 1, logTail: `Traceback (most recent call last):\nValueError: bad batch on rank ${rank}` });

describe('agent routes: the nodes of a multi-node attempt', () => {
  it('every node of the attempt may take its run credentials; an instance of no node may not', async () => {
    const { call, as, issued } = nodesWorld();
    for (const rank of [0, 1, 2]) expect((await call('credentials', { runId: 'run-n', attempt: 1 }, as(rank))).status).toBe(200);
    expect(issued.map((i) => i.sessionName)).toEqual(['run-n-1', 'run-n-1', 'run-n-1']);
    expect((await call('credentials', { runId: 'run-n', attempt: 1 }, `${ROLE_ID}:i-0stranger00000000`)).status).toBe(403);
  });

  it('succeeds the task only when rank 0 and every other node have succeeded, with rank 0\'s output', async () => {
    const { call, as, answered, nodes } = nodesWorld();
    expect((await call('success', { runId: 'run-n', attempt: 1, output: '{"exitCode":0,"rank":1}' }, as(1))).status).toBe(200);
    expect((await call('success', { runId: 'run-n', attempt: 1, output: '{"exitCode":0,"rank":0}' }, as(0))).status).toBe(200);
    expect(answered).toEqual([]);
    expect(nodes().map((n) => n.outcome?.kind)).toEqual(['SUCCEEDED', 'SUCCEEDED', undefined]);

    await call('success', { runId: 'run-n', attempt: 1, output: '{"exitCode":0,"rank":2}' }, as(2));
    expect(answered).toEqual([['success', 'TOKEN-N', '{"exitCode":0,"rank":0}']]);
  });

  it("fails the run at once with the failing node's traceback, naming the node", async () => {
    const { call, as, answered, records } = nodesWorld();
    await call('failure', { runId: 'run-n', attempt: 1, error: 'Training.Failed', cause: failureOf(2) }, as(2));
    expect(answered).toEqual([['failure', 'TOKEN-N', 'Training.Failed']]);
    const cause = records.get('run-n')?.attempts[0]?.nodes?.[2]?.outcome?.cause ?? '';
    expect(JSON.parse(cause)).toMatchObject({ node: 2, exitCode: 1 });
    expect(cause).toContain('bad batch on rank 2');
  });

  it("checks a failure against the nodes' instances first (one DescribeInstances): all running, it is the user's", async () => {
    const { call, as, answered, describeCalls, nodes } = nodesWorld();
    await call('failure', { runId: 'run-n', attempt: 1, error: 'Training.Failed', cause: failureOf(1) }, as(1));
    expect(answered).toEqual([['failure', 'TOKEN-N', 'Training.Failed']]);
    expect(describeCalls().map((c) => c.args[0].input.Filters)).toEqual([[{ Name: 'instance-id', Values: NODES }]]);
    expect(nodes().map((n) => n.lostAt)).toEqual([undefined, undefined, undefined]);
  });

  it("a peer's instance gone before EC2's event said so: rank 0's failure ends the attempt Instance.Lost, naming the lost node, not the user's", async () => {
    const { call, as, answered, nodes, instanceStates } = nodesWorld();
    instanceStates.set(NODES[2] ?? '', 'shutting-down');
    await call('failure', { runId: 'run-n', attempt: 1, error: 'Training.Failed', cause: failureOf(1) }, as(1));
    // Node 2 is marked lost: node 1's failure is the loss's doing, and rank 0 decides.
    expect(answered).toEqual([]);
    expect(nodes()[2]?.lostAt).toEqual(expect.any(String));

    await call('failure', { runId: 'run-n', attempt: 1, error: 'Training.Failed', cause: failureOf(0) }, as(0));
    expect(answered).toEqual([['failure', 'TOKEN-N', 'Instance.Lost']]);
  });

  it('rank 0 gone (EC2 no longer knows it): a peer\'s failure marks it lost and waits for its loss to end the attempt', async () => {
    const { call, as, answered, nodes, instanceStates } = nodesWorld();
    instanceStates.set(NODES[0] ?? '', 'gone');
    await call('failure', { runId: 'run-n', attempt: 1, error: 'Training.Failed', cause: failureOf(2) }, as(2));
    expect(answered).toEqual([]);
    expect(nodes().map((n) => n.lostAt === undefined)).toEqual([false, true, true]);
  });

  it('during an interruption a failing peer does not fail the run: rank 0 reports the checkpoint', async () => {
    const { call, as, answered, records } = nodesWorld();
    const run = records.get('run-n');
    if (run === undefined) throw new Error('no run');
    records.set('run-n', { ...run, status: 'CHECKPOINTING' });
    await call('failure', { runId: 'run-n', attempt: 1, error: 'Training.Failed', cause: failureOf(1) }, as(1));
    expect(answered).toEqual([]);
    await call('failure', { runId: 'run-n', attempt: 1, error: 'Spot.Interrupted', cause: '{"checkpoint":"s3://b/c/"}' }, as(2));
    expect(answered).toEqual([]);
    await call('failure', { runId: 'run-n', attempt: 1, error: 'Spot.Interrupted', cause: '{"checkpoint":"s3://b/c/"}' }, as(0));
    expect(answered).toEqual([['failure', 'TOKEN-N', 'Spot.Interrupted']]);
  });

  it('relays a heartbeat while every node beats; a node silent past the window stops the relay (the others are not told to stop) and is marked lost', async () => {
    // The attempt started 10 minutes ago; the window is 60 s.
    const { call, as, answered, nodes, records } = nodesWorld({ window: 60 });
    const fresh = new Date(Date.now() - 5_000).toISOString();
    const run = records.get('run-n');
    if (run === undefined) throw new Error('no run');
    const beaten = run.attempts.map((a) => ({ ...a, trainingStartedAt: new Date(Date.now() - 600_000).toISOString(), nodes: a.nodes?.map((n) => (n.rank === 2 ? n : { ...n, lastHeartbeatAt: fresh })) }));
    records.set('run-n', { ...run, attempts: beaten });

    // Answered 200 (a 409 would stop node 0's healthy agent), but not relayed: the task's heartbeat timeout follows.
    const held = await call('heartbeat', { runId: 'run-n', attempt: 1 }, as(0));
    expect(held.status).toBe(200);
    expect(answered).toEqual([]);
    expect(nodes().map((n) => n.lostAt !== undefined)).toEqual([false, false, true]);

    // Once node 2 beats again (a slow node, not a dead one) the relay resumes.
    expect((await call('heartbeat', { runId: 'run-n', attempt: 1 }, as(2))).status).toBe(200);
    expect(answered).toEqual([['heartbeat', 'TOKEN-N']]);
  });

  it('keeps the upload progress of rank 0 only', async () => {
    const { call, as, records } = nodesWorld();
    await call('heartbeat', { runId: 'run-n', attempt: 1, upload: { bytes: 5, totalBytes: 10 } }, as(1));
    expect(records.get('run-n')?.attempts[0]?.checkpointUpload).toBeUndefined();
    await call('heartbeat', { runId: 'run-n', attempt: 1, upload: { bytes: 7, totalBytes: 10 } }, as(0));
    expect(records.get('run-n')?.attempts[0]?.checkpointUpload).toMatchObject({ bytes: 7, totalBytes: 10 });
  });

  it('refuses a node released at the recovery', async () => {
    const { call, as, records } = nodesWorld();
    const run = records.get('run-n');
    if (run === undefined) throw new Error('no run');
    records.set('run-n', { ...run, attempts: run.attempts.map((a) => ({ ...a, nodes: a.nodes?.map((n) => (n.rank === 1 ? { ...n, releasedAt: STARTED } : n)) })) });
    expect((await call('credentials', { runId: 'run-n', attempt: 1 }, as(1))).status).toBe(403);
  });
});
