import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { uploadBundle } from '../../examples/bundle';
import { latencyModel } from '../../local/latency';
import type { RunRecord } from '../../shared/domain/run-record';
import { metricsOf, objectText, processesOf, runKeys, startWorld, waitFor, type E2eWorld } from './support';

/**
 * Multi-node runs on the local backend, end to end: the real train-run machine provisions N
 * local nodes, the real agents start the fixture script on each with its rank and rank 0's
 * address, and recovery replaces only the node that was lost. The script needs no collectives
 * (examples/node-contract/train.py); examples/ddp with PyTorch runs through `npm start -- --nodes 2`.
 */

const FIXTURE = fileURLToPath(new URL('../../examples/node-contract/', import.meta.url));

let world: E2eWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

async function submitNodes(w: E2eWorld, nodes: number, hyperparameters: Record<string, number>, extra: Record<string, unknown> = {}): Promise<string> {
  const bundle = await uploadBundle(w.backend.s3, w.backend.services.bucket, FIXTURE);
  const submitted = await w.backend.submit({
    spec: {
      ...extra,
      name: 'nodes-fixture',
      code: { bundle, command: ['python3', 'train.py'] },
      hyperparameters,
      nodes,
      instance: { types: ['c7i.large'], spot: true },
      checkpoint: { intervalSeconds: 5, graceSeconds: 20 },
    },
  });
  return submitted.runId;
}

/** Resolves once rank 0 has saved `step` into S3 and every node of the attempt trains. */
function waitForStep(w: E2eWorld, runId: string, step: number): Promise<RunRecord> {
  return waitFor(`step ${step} of ${runId} in S3`, async () => {
    const record = await w.backend.store.get(runId);
    if (record?.status !== 'TRAINING') return undefined;
    const latest = await w.backend.artifacts.latestCheckpoint(runId);
    if (latest === undefined) return undefined;
    const state = JSON.parse(await objectText(w, `${new URL(latest.uri).pathname.slice(1)}state.json`)) as { step: number };
    return state.step >= step ? record : undefined;
  });
}

const steps = async (w: E2eWorld, runId: string) => (await metricsOf(w, runId)).filter((m) => typeof m.step === 'number').map((m) => [m.attempt, m.step]);

describe('local backend: multi-node runs', () => {
  it('trains on two nodes: each with its rank and rank 0 as master, logs per node, metrics from rank 0, every node released', async () => {
    world = await startWorld();
    const runId = await submitNodes(world, 2, { steps: 4, 'step-seconds': 0.2 });
    const record = await world.backend.waitForRun(runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.attempts).toHaveLength(1);
    const nodes = record.attempts[0]?.nodes ?? [];
    expect(nodes.map((n) => [n.rank, n.outcome?.kind, n.privateIp])).toEqual([[0, 'SUCCEEDED', '127.0.0.1'], [1, 'SUCCEEDED', '127.0.0.1']]);
    expect(new Set(nodes.map((n) => n.instanceId)).size).toBe(2);
    expect(record.attempts[0]?.instanceId).toBe(nodes[0]?.instanceId);
    const keys = await runKeys(world, runId);
    expect(keys).toContain('logs/attempt-1.log');
    expect(keys).toContain('logs/attempt-1-node-1.log');
    expect(await objectText(world, `runs/${runId}/logs/attempt-1-node-1.log`)).toMatch(/node 1 of 2 \(master 127\.0\.0\.1:3\d{4}\)/);
    expect(await steps(world, runId)).toEqual([[1, 1], [1, 2], [1, 3], [1, 4]]);
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it.each([1, 0])('replaces only node %i after its spot warning; the other node keeps its instance and every rank resumes from the checkpoint', async (lost) => {
    world = await startWorld();
    const runId = await submitNodes(world, 2, { steps: 6, 'step-seconds': 0.3, 'hold-after-step': 3 });
    const training = await waitForStep(world, runId, 3);
    const first = training.attempts[0]?.nodes ?? [];

    const warning = await world.backend.interrupt(runId, { node: lost, graceMs: 20_000 });
    expect(warning.instanceId).toBe(first[lost]?.instanceId);
    const record = await world.backend.waitForRun(runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(1);
    expect(record.attempts.map((a) => a.endReason)).toEqual(['SPOT_INTERRUPTED', 'SUCCEEDED']);
    const second = record.attempts[1]?.nodes ?? [];
    const kept = 1 - lost;
    expect(second[kept]).toMatchObject({ instanceId: first[kept]?.instanceId, launchedForAttempt: 1 });
    expect(second[lost]?.instanceId).not.toBe(first[lost]?.instanceId);
    expect(second[lost]?.launchedForAttempt).toBe(2);
    expect(record.attempts[0]?.nodes?.[lost]).toMatchObject({ warnedAt: expect.any(String), releasedAt: expect.any(String) });
    // The replacement was launched on the warning for that rank (its own client token), beside the
    // kept node, and attempt 2 took it over, online already: no other instance was launched.
    const replacement = record.attempts[0]?.replacement;
    expect(replacement).toMatchObject({ attempt: 2, rank: lost, instanceId: second[lost]?.instanceId, readyAt: expect.any(String) });
    expect(replacement?.releasedAt).toBeUndefined();
    expect(second[lost]).toMatchObject({ readyAt: replacement?.readyAt, launchedAt: replacement?.launchedAt });
    expect((await world.backend.compute.launchedFor(runId)).map((i) => i.clientToken)).toEqual([`${runId}-1-n2`, `${runId}-1-n2`, `${runId}-2-r${lost}`]);
    // The loss goes on from the checkpoint: attempt 2 starts after step 3.
    const trained = await steps(world, runId);
    expect(trained.filter(([attempt]) => attempt === 2).map(([, step]) => step)).toEqual([4, 5, 6]);
    // Rank 0's address is the rendezvous of each attempt; each attempt has its own port.
    const log = await objectText(world, `runs/${runId}/logs/attempt-2-node-1.log`);
    expect(log).toMatch(/node 1 of 2 \(master 127\.0\.0\.1:3\d{4}\) starting after step 3/);
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it('a rebalance recommendation on node 1: every node saves early, and node 1 alone is replaced by the instance launched on the recommendation', async () => {
    world = await startWorld();
    const recovery = { checkpointOnRebalance: true, preProvisionOnRebalance: true };
    const runId = await submitNodes(world, 2, { steps: 6, 'step-seconds': 0.3, 'hold-after-step': 3 }, { recovery });
    const training = await waitForStep(world, runId, 3);
    const first = training.attempts[0]?.nodes ?? [];

    const [delivered] = await world.backend.router.emitRebalanceRecommendation(first[1]?.instanceId ?? '');
    expect(delivered).toMatchObject({ ok: true, result: { action: 'checkpoint-requested', instanceId: first[1]?.instanceId } });
    const record = await world.backend.waitForRun(runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.attempts.map((a) => a.endReason)).toEqual(['SPOT_INTERRUPTED', 'SUCCEEDED']);
    expect(record.attempts[0]?.nodes?.[1]).toMatchObject({ warnedAt: expect.any(String), releasedAt: expect.any(String) });
    const second = record.attempts[1]?.nodes ?? [];
    expect(second[0]).toMatchObject({ instanceId: first[0]?.instanceId, launchedForAttempt: 1 });
    expect(record.attempts[0]?.replacement).toMatchObject({ rank: 1, instanceId: second[1]?.instanceId });
    expect((await steps(world, runId)).filter(([attempt]) => attempt === 2).map(([, step]) => step)).toEqual([4, 5, 6]);
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it('a node killed without a warning while training: an interruption, not the user\'s error; that node alone is replaced and training goes on from the checkpoint', async () => {
    world = await startWorld();
    const runId = await submitNodes(world, 2, { steps: 6, 'step-seconds': 0.3, 'hold-after-step': 3 });
    const training = await waitForStep(world, runId, 3);
    const first = training.attempts[0]?.nodes ?? [];

    await world.backend.compute.kill(first[1]?.instanceId ?? '');
    const record = await world.backend.waitForRun(runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.userFailures).toBe(0);
    expect(record.attempts[0]?.nodes?.[1]).toMatchObject({ lostAt: expect.any(String) });
    expect(record.attempts[0]?.endReason).toBe('INSTANCE_LOST');
    const second = record.attempts[1]?.nodes ?? [];
    expect(second[0]).toMatchObject({ instanceId: first[0]?.instanceId, launchedForAttempt: 1 });
    expect(second[1]?.launchedForAttempt).toBe(2);
    expect((await steps(world, runId)).filter(([attempt]) => attempt === 2).map(([, step]) => step)).toEqual([4, 5, 6]);
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it("fails the run FAILED_USER with the failing node's traceback, and releases every node", async () => {
    world = await startWorld();
    const runId = await submitNodes(world, 2, { steps: 30, 'step-seconds': 0.3, 'fail-rank': 1 });
    const record = await world.backend.waitForRun(runId);

    expect(record.status).toBe('FAILED_USER');
    expect(record.statusReason).toContain('node 1');
    expect(record.statusReason).toContain('bad shard on rank 1');
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it('a warning on both nodes at once: one checkpoint, both nodes replaced, one interruption counted', async () => {
    world = await startWorld();
    const runId = await submitNodes(world, 2, { steps: 5, 'step-seconds': 0.3, 'hold-after-step': 2 });
    const training = await waitForStep(world, runId, 2);
    const first = training.attempts[0]?.nodes ?? [];

    await Promise.all([world.backend.interrupt(runId, { node: 0, graceMs: 20_000 }), world.backend.interrupt(runId, { node: 1, graceMs: 20_000 })]);
    const record = await world.backend.waitForRun(runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(1);
    const second = record.attempts[1]?.nodes ?? [];
    expect(second.map((n) => n.launchedForAttempt)).toEqual([2, 2]);
    expect(second.map((n) => n.instanceId)).not.toContain(first[0]?.instanceId);
    expect(second.map((n) => n.instanceId)).not.toContain(first[1]?.instanceId);
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it('a cancel stops every node and releases them all', async () => {
    world = await startWorld();
    const runId = await submitNodes(world, 2, { steps: 8, 'step-seconds': 0.3, 'hold-after-step': 2 });
    await waitForStep(world, runId, 2);

    await world.backend.cancel(runId);
    const record = await world.backend.waitForRun(runId);

    expect(record.status).toBe('CANCELLED');
    expect(record.attempts[0]?.nodes?.every((n) => n.releasedAt !== undefined)).toBe(true);
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);

  it('with room for one node less than the fleet: holds none while it waits, says so, and trains once the room is there', async () => {
    let room = 1;
    world = await startWorld({ capacity: (_type, _zone, _spot, count) => (count <= room ? 'ok' : 'InsufficientInstanceCapacity') });
    const runId = await submitNodes(world, 2, { steps: 2, 'step-seconds': 0.2 });

    const waiting = await waitFor('the run waiting for capacity', async () => {
      const record = await world?.backend.store.get(runId);
      return record?.status === 'WAITING_FOR_CAPACITY' ? record : undefined;
    });
    expect(waiting.statusReason).toMatch(/^Holding 0 of 2 nodes: .*InsufficientInstanceCapacity/);
    // All or none: no node of the run is held while it waits.
    expect((await world.backend.compute.listTaggedInstances()).filter((i) => i.runId === runId)).toEqual([]);

    room = 2;
    const record = await world.backend.waitForRun(runId);
    expect(record.status).toBe('SUCCEEDED');
    expect(record.attempts[0]?.nodes).toHaveLength(2);
  }, 300_000);

  it('a node lost while the data is copied: that node alone is replaced, and only it copies the data again', async () => {
    // 20 kB/s per instance: the example's dataset takes seconds to copy.
    world = await startWorld({ latency: latencyModel('instant', { s3DownloadBytesPerSecond: 20_000 }) });
    const runId = await submitNodes(world, 2, { steps: 2, 'step-seconds': 0.2 }, { data: [{ source: world.example.dataset, target: '/data' }] });
    const copying = await waitFor('node 1 copying the data', async () => {
      const record = await world?.backend.store.get(runId);
      const node = record?.attempts[0]?.nodes?.[1];
      return record?.status === 'PREFETCHING' && node?.copyCommandId !== undefined && node.dataReadyAt === undefined ? node : undefined;
    });

    await world.backend.compute.kill(copying.instanceId);
    const record = await world.backend.waitForRun(runId);

    expect(record.status).toBe('SUCCEEDED');
    expect(record.interruptions).toBe(1);
    const [first, second] = record.attempts;
    expect(first?.nodes?.[1]).toMatchObject({ instanceId: copying.instanceId, lostAt: expect.any(String), releasedAt: expect.any(String) });
    expect(second?.nodes?.[0]).toMatchObject({ instanceId: first?.nodes?.[0]?.instanceId, launchedForAttempt: 1 });
    expect(second?.nodes?.[1]?.launchedForAttempt).toBe(2);
    // The kept node had its copy: the second attempt copied to the new node alone.
    expect(second?.nodes?.[0]?.copyCommandId).toBe(first?.nodes?.[0]?.copyCommandId);
    expect(second?.nodes?.[1]?.copyCommandId).toBeDefined();
    expect(await processesOf(record)).toEqual([]);
  }, 300_000);
});
