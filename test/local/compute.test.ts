import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LATENCY_PROFILES, latencyModel } from '../../local/latency';
import { INSTANCE_MARKER, LOCAL_STACK, LocalCompute, type LocalComputeOptions } from '../../local/compute';
import { findProcessesByEnv, terminateMarked } from '../../local/process-tree';
import { CapacityUnavailableError, InstanceLostError, InstanceNotReadyError } from '../../shared/errors';
import type { CommandResult, InstanceLifecycleState, LaunchNodesRequest, LaunchRequest } from '../../shared/ports/compute';
import { LocalNodeNetworks } from '../../local/networks';

let root: string;
const computes: LocalCompute[] = [];
const launched = new Set<string>();

function compute(options: Omit<LocalComputeOptions, 'root'> = {}): LocalCompute {
  const local = new LocalCompute({ root, bootMs: 0, terminateGraceMs: 500, ...options });
  computes.push(local);
  return local;
}

function request(overrides: Partial<LaunchRequest> = {}): LaunchRequest {
  return {
    runId: 'run-7f3a',
    attempt: 1,
    instanceTypes: ['g5.xlarge'],
    subnets: [],
    spot: true,
    onDemandFallback: false,
    rootVolumeGiB: 100,
    tags: { team: 'vision' },
    ...overrides,
  };
}

async function launch(local: LocalCompute, overrides: Partial<LaunchRequest> = {}) {
  const instance = await local.launch(request(overrides));
  launched.add(instance.instanceId);
  return instance;
}

async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const finished = (result: CommandResult) => !['Pending', 'InProgress', 'Delayed'].includes(result.status);

async function runToEnd(local: LocalCompute, instanceId: string, script: string): Promise<CommandResult> {
  const commandId = await local.sendCommand(instanceId, script);
  return eventually(() => local.commandResult(instanceId, commandId), finished);
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'runctl-compute-'));
});

afterEach(async () => {
  for (const local of computes.splice(0)) local.close();
  for (const id of launched) await terminateMarked(INSTANCE_MARKER, id, { graceMs: 0, firstSignal: 'SIGKILL' });
  launched.clear();
  await rm(root, { recursive: true, force: true });
});

describe('LocalCompute.launch', () => {
  it('returns the same instance for a retried launch of the same attempt, also after a restart', async () => {
    const first = compute();
    const instance = await launch(first);

    const retried = await launch(first);
    const afterRestart = await launch(compute());
    const nextAttempt = await launch(compute(), { attempt: 2 });

    expect(instance.instanceId).toMatch(/^i-local[0-9a-f]{8}$/);
    expect(instance.availabilityZone).toBe('local-1a');
    expect(retried.instanceId).toBe(instance.instanceId);
    expect(afterRestart.instanceId).toBe(instance.instanceId);
    expect(nextAttempt.instanceId).not.toBe(instance.instanceId);
    const registry = JSON.parse(await readFile(join(root, 'instances', 'registry.json'), 'utf8'));
    expect(registry.instances).toHaveLength(2);
  });

  it('walks types, then on-demand, recording each capacity refusal like the EC2 adapter', async () => {
    const asked: string[] = [];
    const local = compute({
      capacity: (type, zone, spot) => {
        asked.push(`${type}/${zone}/${spot ? 'spot' : 'od'}`);
        return spot ? (type === 'g5.xlarge' ? 'InsufficientInstanceCapacity' : 'MaxSpotInstanceCountExceeded') : 'ok';
      },
    });

    const instance = await launch(local, { instanceTypes: ['g5.xlarge', 'g6.xlarge'], onDemandFallback: true });

    expect(asked).toEqual(['g5.xlarge/local-1a/spot', 'g6.xlarge/local-1a/spot', 'g5.xlarge/local-1a/od']);
    expect(instance).toMatchObject({ instanceType: 'g5.xlarge', spot: false });
    expect(instance.misses).toEqual([
      { instanceType: 'g5.xlarge', spot: true, code: 'InsufficientInstanceCapacity' },
      { instanceType: 'g6.xlarge', spot: true, code: 'MaxSpotInstanceCountExceeded' },
    ]);
  });

  it('throws Capacity.Unavailable naming every try when nothing has capacity', async () => {
    const local = compute({ capacity: () => 'InsufficientInstanceCapacity', zones: ['local-1a', 'local-1b'] });

    const error = await local.launch(request({ instanceTypes: ['g5.xlarge', 'g6.xlarge'] })).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CapacityUnavailableError);
    expect(error).toHaveProperty('name', 'Capacity.Unavailable');
    expect(String(error)).toContain('g6.xlarge spot');
    expect(await local.listTaggedInstances()).toEqual([]);
  });
});

describe('LocalCompute.launchNodes', () => {
  async function launchNodes(local: LocalCompute, overrides: Partial<LaunchNodesRequest> = {}) {
    const { rank: _rank, ...base } = request();
    const nodes = await local.launchNodes({ ...base, count: 3, ...overrides });
    for (const node of nodes) launched.add(node.instanceId);
    return nodes;
  }

  it('launches every node of the attempt at once, ranked, on loopback, tagged with the rank; a retry returns the same fleet', async () => {
    const local = compute();

    const nodes = await launchNodes(local);
    const retried = await launchNodes(compute());

    expect(nodes.map((n) => [n.rank, n.privateIp])).toEqual([
      [0, '127.0.0.1'],
      [1, '127.0.0.1'],
      [2, '127.0.0.1'],
    ]);
    expect(new Set(nodes.map((n) => n.instanceId)).size).toBe(3);
    expect(retried.map((n) => n.instanceId)).toEqual(nodes.map((n) => n.instanceId));
    const listed = await local.listTaggedInstances();
    expect(listed.map((i) => [i.instanceId, i.rank])).toEqual(nodes.map((n) => [n.instanceId, n.rank]));
    const registry = JSON.parse(await readFile(join(root, 'instances', 'registry.json'), 'utf8'));
    expect(registry.instances.map((i: { tags: Record<string, string> }) => i.tags['runctl:rank'])).toEqual(['0', '1', '2']);
  });

  it('re-tags kept nodes with the attempt they now serve, and a restarted control plane reads it back', async () => {
    const local = compute();
    const nodes = await launchNodes(local);
    await local.tagAttempt([nodes[0]?.instanceId ?? '', nodes[2]?.instanceId ?? ''], 2);

    const listed = await compute().listTaggedInstances();
    expect(listed.map((i) => [i.rank, i.attempt])).toEqual([[0, 2], [1, 1], [2, 2]]);
  });

  it('asks the capacity simulator once per try for the whole fleet: all nodes in one zone, or none', async () => {
    const asked: string[] = [];
    const local = compute({
      zones: ['local-1a', 'local-1b'],
      capacity: (type, zone) => {
        asked.push(`${type}/${zone}`);
        return zone === 'local-1a' ? 'InsufficientInstanceCapacity' : 'ok';
      },
    });

    const nodes = await launchNodes(local);

    expect(asked).toEqual(['g5.xlarge/local-1a', 'g5.xlarge/local-1b']);
    expect(nodes.map((n) => n.availabilityZone)).toEqual(['local-1b', 'local-1b', 'local-1b']);
    expect(nodes[0]?.misses).toEqual([{ instanceType: 'g5.xlarge', spot: true, code: 'InsufficientInstanceCapacity' }]);
  });

  it('tells the capacity simulator how many nodes a try asks for: room for N−1 launches no fleet of N', async () => {
    const local = compute({ capacity: (_type, _zone, _spot, count) => (count <= 2 ? 'ok' : 'InsufficientInstanceCapacity') });

    await expect(launchNodes(local, { count: 3 })).rejects.toBeInstanceOf(CapacityUnavailableError);
    expect(await local.listTaggedInstances()).toEqual([]);
    await expect(launchNodes(local, { count: 2 })).resolves.toHaveLength(2);
  });

  it('launches nothing when no try can hold the fleet', async () => {
    const local = compute({ capacity: () => 'InsufficientInstanceCapacity' });
    const error = await launchNodes(local).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CapacityUnavailableError);
    expect(String(error)).toContain('3 nodes at once');
    expect(await local.listTaggedInstances()).toEqual([]);
  });

  it('on a retry after a node was lost, terminates the survivors and throws Instance.Lost', async () => {
    const local = compute();
    const nodes = await launchNodes(local);
    await local.kill(nodes[1]?.instanceId ?? '');

    const error = await launchNodes(local).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InstanceLostError);
    expect(String(error)).toContain(`rank 1 (${nodes[1]?.instanceId})`);
    expect(await local.listTaggedInstances()).toEqual([]);
  });

  it('launches one rank alone with its own token: a retry adopts it, another rank or the fleet does not', async () => {
    const local = compute();
    const fleet = await launchNodes(local, { count: 2 });

    const rank1 = await launch(local, { rank: 1 });
    const again = await launch(local, { rank: 1 });
    const single = await launch(local);

    expect(rank1).toMatchObject({ rank: 1, privateIp: '127.0.0.1' });
    expect(again.instanceId).toBe(rank1.instanceId);
    expect(fleet.map((n) => n.instanceId)).not.toContain(rank1.instanceId);
    expect(single.instanceId).not.toBe(rank1.instanceId);
    expect(single.rank).toBeUndefined();
  });
});

describe('LocalNodeNetworks', () => {
  it('has nothing to create on loopback, nothing to release and nothing to list', async () => {
    const networks = new LocalNodeNetworks();
    await expect(networks.ensure('run-7f3a', { subnets: [], instanceType: 'g5.12xlarge' })).resolves.toEqual({});
    await expect(networks.release('run-7f3a')).resolves.toBeUndefined();
    await expect(networks.listRunNetworks()).resolves.toEqual([]);
  });
});

describe('LocalCompute.readiness', () => {
  it('is pending until the boot time has passed, then running and ready; unknown instances are gone', async () => {
    let clock = Date.parse('2026-03-01T10:00:00Z');
    const local = compute({ bootMs: 60_000, now: () => new Date(clock) });
    const { instanceId } = await launch(local);

    const booting = await local.readiness(instanceId);
    clock += 60_000;
    const booted = await local.readiness(instanceId);

    expect(booting).toEqual({ state: 'pending', ready: false, agentOnline: false });
    expect(booted).toEqual({ state: 'running', ready: true, agentOnline: true });
    expect(await local.readiness('i-local00000000')).toEqual({ state: 'gone', ready: false, agentOnline: false });
    await expect(local.sendCommand('i-local00000000', 'true')).rejects.toBeInstanceOf(InstanceNotReadyError);
  });

  it('under a latency model, stays not ready after running until the SSM agent is online', async () => {
    let clock = Date.parse('2026-03-01T10:00:00Z');
    const local = compute({ latency: latencyModel('aws'), now: () => new Date(clock) });
    const { instanceId } = await launch(local);

    clock += LATENCY_PROFILES.aws.launchMs;
    const running = await local.readiness(instanceId);
    const refused = await local.sendCommand(instanceId, 'true').catch((e: unknown) => e);
    clock += LATENCY_PROFILES.aws.ssmOnlineMs;
    const online = await local.readiness(instanceId);

    expect(running).toEqual({ state: 'running', ready: false, agentOnline: false });
    expect(refused).toBeInstanceOf(InstanceNotReadyError);
    expect(String(refused)).toContain('SSM agent not online yet');
    expect(online).toEqual({ state: 'running', ready: true, agentOnline: true });
  });

  it('refuses commands while the instance is pending', async () => {
    const local = compute({ bootMs: 60_000 });
    const { instanceId } = await launch(local);

    await expect(local.sendCommand(instanceId, 'true')).rejects.toThrow(/pending/);
  });
});

describe('LocalCompute commands', () => {
  it('runs the script in the sandbox with the instance environment and reports output and exit code', async () => {
    const local = compute({
      endpoints: { s3: 'http://127.0.0.1:4569', dynamodb: 'http://127.0.0.1:4567', sfn: 'http://127.0.0.1:4570' },
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      imdsEndpoint: (id) => `http://127.0.0.1:9/${id}`,
    });
    const { instanceId } = await launch(local);
    await eventually(() => local.readiness(instanceId), (r) => r.ready);

    const result = await runToEnd(
      local,
      instanceId,
      [
        'echo "$PWD|$RUNCTL_INSTANCE_ROOT|$RUNCTL_LOCAL_INSTANCE|$RUNCTL_IMDS_ENDPOINT"',
        'echo "$AWS_ENDPOINT_URL_S3|$AWS_ENDPOINT_URL_DYNAMODB|$AWS_ENDPOINT_URL_SFN|$AWS_ACCESS_KEY_ID|$AWS_REGION"',
        'echo oops >&2',
        'exit 3',
      ].join('\n'),
    );

    const sandbox = local.sandbox(instanceId);
    expect(result).toEqual({
      status: 'Failed',
      exitCode: 3,
      stdout:
        `${sandbox}|${sandbox}|${instanceId}|http://127.0.0.1:9/${instanceId}\n` +
        'http://127.0.0.1:4569|http://127.0.0.1:4567|http://127.0.0.1:4570|S3RVER|us-east-1\n',
      stderr: 'oops\n',
    });
    expect(sandbox).toBe(join(root, 'instances', instanceId));
  });

  it('reports Success for exit 0, truncates output to 24,000 characters, and InProgress while running', async () => {
    const local = compute();
    const { instanceId } = await launch(local);
    await eventually(() => local.readiness(instanceId), (r) => r.ready);

    const long = await runToEnd(local, instanceId, "head -c 30000 /dev/zero | tr '\\0' x");
    const running = await local.sendCommand(instanceId, 'sleep 300');
    const inProgress = await local.commandResult(instanceId, running);
    await local.terminate(instanceId);
    const afterTerminate = await local.commandResult(instanceId, running);

    expect(long.status).toBe('Success');
    expect(long.exitCode).toBe(0);
    expect(long.stdout).toBe('x'.repeat(24_000));
    expect(inProgress.status).toBe('InProgress');
    expect(afterTerminate.status).toBe('Failed');
  });

  it('stops a command at its timeout and reports TimedOut', async () => {
    const local = compute();
    const { instanceId } = await launch(local);
    await eventually(() => local.readiness(instanceId), (r) => r.ready);

    const commandId = await local.sendCommand(instanceId, 'sleep 300', { timeoutSeconds: 1 });
    const result = await eventually(() => local.commandResult(instanceId, commandId), finished);

    expect(result.status).toBe('TimedOut');
  });
});

describe('LocalCompute.terminate and kill', () => {
  const detachedSleeper = [
    // Leaves a grandchild in its own session, as the agent does, then returns at once.
    'setsid bash -c "trap \'echo term > \\"\\$RUNCTL_INSTANCE_ROOT/got-term\\"; exit 0\' TERM; sleep 300 & wait" </dev/null >/dev/null 2>&1 &',
    'echo started',
  ].join('\n');

  it('kills a setsid-detached grandchild with SIGTERM first, then reports terminated; repeat and unknown are success', async () => {
    const states: Array<[string, InstanceLifecycleState]> = [];
    const local = compute({ onStateChange: (id, state) => void states.push([id, state]) });
    const { instanceId } = await launch(local);
    await eventually(() => local.readiness(instanceId), (r) => r.ready);
    const started = await runToEnd(local, instanceId, detachedSleeper);
    const before = await eventually(() => findProcessesByEnv(INSTANCE_MARKER, instanceId), (pids) => pids.length >= 2);

    await local.terminate(instanceId);
    await local.terminate(instanceId);
    await local.terminate('i-local00000000');

    expect(started).toMatchObject({ status: 'Success', stdout: 'started\n' });
    expect(before.length).toBeGreaterThanOrEqual(2);
    expect(await findProcessesByEnv(INSTANCE_MARKER, instanceId)).toEqual([]);
    expect(await readFile(join(local.sandbox(instanceId), 'got-term'), 'utf8')).toBe('term\n');
    expect(await local.readiness(instanceId)).toEqual({ state: 'terminated', ready: false, agentOnline: false });
    expect(await local.listTaggedInstances()).toEqual([]);
    const seen = await eventually(async () => states.map(([, s]) => s), (s) => s.length >= 4);
    expect(seen).toEqual(['pending', 'running', 'shutting-down', 'terminated']);
    expect(states.every(([id]) => id === instanceId)).toBe(true);
  });

  it('kill ends every process at once with SIGKILL, without the TERM handler running', async () => {
    const states: InstanceLifecycleState[] = [];
    const local = compute();
    local.onStateChange((_id, state) => void states.push(state));
    const { instanceId } = await launch(local);
    await eventually(() => local.readiness(instanceId), (r) => r.ready);
    await runToEnd(local, instanceId, detachedSleeper);
    await eventually(() => findProcessesByEnv(INSTANCE_MARKER, instanceId), (pids) => pids.length >= 2);

    await local.kill(instanceId);

    expect(await findProcessesByEnv(INSTANCE_MARKER, instanceId)).toEqual([]);
    await expect(readFile(join(local.sandbox(instanceId), 'got-term'))).rejects.toThrow(/ENOENT/);
    expect((await local.readiness(instanceId)).state).toBe('terminated');
    expect(await eventually(async () => states, (s) => s.includes('terminated'))).toEqual([
      'pending',
      'running',
      'shutting-down',
      'terminated',
    ]);
  });

  it('lists live instances with their run and attempt', async () => {
    const local = compute();
    const a = await launch(local);
    const b = await launch(local, { runId: 'run-other', attempt: 3, spot: false });
    await local.terminate(a.instanceId);

    const listed = await local.listTaggedInstances();

    expect(listed).toEqual([
      {
        instanceId: b.instanceId,
        runId: 'run-other',
        attempt: 3,
        state: 'running',
        launchedAt: b.launchedAt,
        instanceType: 'g5.xlarge',
        spot: false,
      },
    ]);
  });

  it("tags each instance with its stack and lists only that stack's, like the EC2 adapter, when two share a registry", async () => {
    // Still booting throughout: no boot timer rewrites the shared registry under the other's launch.
    const ours = compute({ bootMs: 60_000 });
    const theirs = compute({ stack: 'runctl-prod', bootMs: 60_000 });
    const a = await launch(ours, { runId: 'run-ours' });
    const b = await launch(theirs, { runId: 'run-theirs' });

    expect((await ours.listTaggedInstances()).map((i) => i.instanceId)).toEqual([a.instanceId]);
    expect((await theirs.listTaggedInstances()).map((i) => i.instanceId)).toEqual([b.instanceId]);
    const registry = JSON.parse(await readFile(join(root, 'instances', 'registry.json'), 'utf8')) as { instances: { instanceId: string; tags: Record<string, string> }[] };
    expect(registry.instances.find((i) => i.instanceId === a.instanceId)?.tags).toMatchObject({ 'runctl:run': 'run-ours', 'runctl:stack': LOCAL_STACK });
    expect(registry.instances.find((i) => i.instanceId === b.instanceId)?.tags).toMatchObject({ 'runctl:stack': 'runctl-prod' });
  });
});
