import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalCompute } from '../../../local/compute';
import { LocalNodeNetworks } from '../../../local/networks';
import type { DynamoRunStore } from '../../../shared/adapters/dynamo-run-store';
import { S3Artifacts } from '../../../shared/adapters/s3-artifacts';
import type { NodeState, Replacement, RunRecord } from '../../../shared/domain/run-record';
import { parseRunSpec } from '../../../shared/domain/run-spec';
import type { Artifacts } from '../../../shared/ports/artifacts';
import { launchRequestFor, provisionInstance } from '../../../shared/usecases/provision-instance';
import { releaseResources } from '../../../shared/usecases/release-resources';
import { besideKeptNodes } from '../../../shared/usecases/provision-nodes';
import type { StepDeps } from '../../../shared/usecases/step-deps';
import { runStoreOn, stepConfig } from '../../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../../support/dynalite';

/**
 * The recovery steps of a multi-node run after a spot warning, over dynalite and local instances.
 * ReleaseResources keeps the healthy nodes and the replacement prepared for the next attempt
 * (every node under `nodeRecovery: relaunch-all`; everything when the run ends). ProvisionInstance:
 * the replacement launched on the warning for the warned rank (prepare-replacement) is taken over
 * as that rank beside the kept node, waited for while it still copies, and released when no node
 * is kept and a whole fleet is launched instead. Every instance is real to the local compute, so
 * "nothing else was launched" is read from its registry of launches.
 */
const TABLE = 'runs';
const spec = parseRunSpec({
  name: 'ddp',
  code: { bundle: 's3://runctl-code/bundles/abc.tar.gz', entrypoint: 'train.py' },
  instance: { types: ['g5.xlarge'], spot: true },
  nodes: 2,
});

let dynalite: RunningDynalite;
let store: DynamoRunStore;
let root: string;
let compute: LocalCompute;
let deps: StepDeps;
let sequence = 0;

beforeAll(async () => {
  dynalite = await startDynalite();
  store = await runStoreOn(dynalite.endpoint, TABLE);
  root = await mkdtemp(join(tmpdir(), 'runctl-provision-nodes-'));
  compute = new LocalCompute({ root, bootMs: 0, terminateGraceMs: 200 });
  deps = {
    store,
    compute,
    networks: new LocalNodeNetworks(),
    // Provisioning reads no checkpoint; ReleaseResources confirms there is none yet.
    artifacts: Object.assign(new S3Artifacts(new S3Client({ region: 'us-east-1' }), 'b'), { latestCheckpoint: async () => undefined }) satisfies Artifacts,
    clock: () => new Date(),
    config: stepConfig(TABLE),
  };
});
afterEach(async () => {
  for (const instance of await compute.listTaggedInstances()) await compute.terminate(instance.instanceId);
});
afterAll(async () => {
  await dynalite.close();
  await rm(root, { recursive: true, force: true });
});

interface Warned {
  runId: string;
  nodes: NodeState[];
  replacement: Replacement;
}

/**
 * A run whose attempt 1 trained on two nodes until node `warned` was warned (and `alsoLost` lost),
 * those released as ReleaseResources leaves them, with rank `warned`'s replacement for attempt 2 launched beside the other node, as
 * prepare-replacement launches it, and `progress` recorded on it.
 */
async function warnedRun(warned: number, progress: Partial<Replacement>, alsoLost?: number, options = { released: true }): Promise<Warned> {
  sequence += 1;
  const runId = `r-nodes-${sequence}`;
  const now = new Date().toISOString();
  const record: RunRecord = {
    runId, owner: 'arn:aws:iam::123456789012:user/alice', spec, specHash: 'h', status: 'RECOVERING',
    createdAt: now, updatedAt: now, costUsd: 0, interruptions: 1, userFailures: 0, network: {},
    attempts: [],
  };
  const fleet = await compute.launchNodes({ ...launchRequestFor(record, 1, { instanceTypes: ['g5.xlarge'], availabilityZones: [], spot: true }), count: 2, network: {} });
  const nodes: NodeState[] = fleet.map((instance, rank) => ({
    rank,
    instanceId: instance.instanceId,
    instanceType: instance.instanceType,
    availabilityZone: instance.availabilityZone,
    spot: instance.spot,
    launchedForAttempt: 1,
    launchedAt: instance.launchedAt,
    readyAt: now,
    dataReadyAt: now,
    ...(rank === warned ? { warnedAt: now, ...(options.released ? { releasedAt: now } : {}) } : {}),
    ...(rank === alsoLost ? { lostAt: now, ...(options.released ? { releasedAt: now } : {}) } : {}),
  }));
  // ReleaseResources terminated the warned and lost nodes; the others are kept.
  for (const node of nodes) if (node.releasedAt !== undefined) await compute.terminate(node.instanceId);
  const anchor = nodes[1 - warned];
  if (anchor === undefined) throw new Error('no kept node');
  const launched = await compute.launch(besideKeptNodes(launchRequestFor(record, 2, { instanceTypes: ['g5.xlarge'], availabilityZones: [], spot: true }), anchor, warned, {}));
  const replacement: Replacement = {
    attempt: 2, rank: warned, instanceId: launched.instanceId, instanceType: launched.instanceType,
    availabilityZone: launched.availabilityZone, spot: launched.spot, launchedAt: launched.launchedAt, ...progress,
  };
  await store.create({
    ...record,
    attempts: [
      { attempt: 1, instanceId: nodes[0]?.instanceId, spot: true, startedAt: now, ...(options.released ? { endedAt: now, endReason: 'SPOT_INTERRUPTED' as const } : {}), nodes, replacement },
    ],
  });
  return { runId, nodes, replacement };
}

const READY = { readyAt: '2026-12-02T06:01:00.000Z' };
const COPIED = { ...READY, copyCommandId: 'cmd-copy', dataReadyAt: '2026-12-02T06:02:00.000Z' };

describe('ProvisionInstance of a multi-node run with a replacement launched on the warning', () => {
  it.each([0, 1])('takes the replacement over as rank %i beside the kept node, online with its data: nothing else is launched', async (warned) => {
    const { runId, nodes, replacement } = await warnedRun(warned, COPIED);

    const result = await provisionInstance({ runId, attempt: 2, resumeFrom: null, placement: null, waitingSince: null }, deps);

    const record = await store.get(runId);
    const second = record?.attempts[1];
    expect(second?.nodes?.map((n) => [n.rank, n.instanceId, n.launchedForAttempt])).toEqual(
      [0, 1].map((rank) => (rank === warned ? [rank, replacement.instanceId, 2] : [rank, nodes[rank]?.instanceId, 1])),
    );
    expect(second?.nodes?.[warned]).toMatchObject({ readyAt: COPIED.readyAt, copyCommandId: COPIED.copyCommandId, dataReadyAt: COPIED.dataReadyAt });
    expect(second?.instanceId).toBe(second?.nodes?.[0]?.instanceId);
    // Every node online already: the machine skips the readiness wait.
    expect(result).toMatchObject({ launched: true, prepared: true, instance: { instanceId: second?.nodes?.[0]?.instanceId } });
    expect(record?.status).toBe('STARTING');
    expect((await compute.launchedFor(runId)).map((i) => i.clientToken)).toEqual([`${runId}-1-n2`, `${runId}-1-n2`, `${runId}-2-r${warned}`]);
    expect(record?.attempts[0]?.replacement?.releasedAt).toBeUndefined();
  });

  it('waits for a replacement still copying (AwaitReplacement), then takes it over mid-copy, that copy carried on the node', async () => {
    const { runId, replacement } = await warnedRun(1, { ...READY, copyCommandId: 'cmd-copy' });
    const event = { runId, attempt: 2, resumeFrom: null, placement: null, waitingSince: null };

    const waiting = await provisionInstance(event, deps);

    expect(waiting).toMatchObject({ launched: false, awaitReplacement: true, replacementInstanceId: replacement.instanceId });
    const record = await store.get(runId);
    expect(record?.status).toBe('PROVISIONING');
    expect(record?.statusReason).toBe(`Attempt 2 keeps 1 of 2 nodes and waits for rank 1's replacement ${replacement.instanceId}, launched on the spot warning (online, copying data)`);
    expect(record?.attempts).toHaveLength(1);

    const adopted = await provisionInstance({ ...event, replacementAwaited: true }, deps);

    expect(adopted).toMatchObject({ launched: true, prepared: true });
    const node = (await store.get(runId))?.attempts[1]?.nodes?.[1];
    // PrefetchData then polls this copy instead of starting another.
    expect(node).toMatchObject({ instanceId: replacement.instanceId, copyCommandId: 'cmd-copy' });
    expect(node?.dataReadyAt).toBeUndefined();
  });

  it('releases the replacement when no node is kept (the other one was lost too) and a whole fleet is launched', async () => {
    const { runId, nodes, replacement } = await warnedRun(1, COPIED, 0);

    await provisionInstance({ runId, attempt: 2, resumeFrom: null, placement: null, waitingSince: null }, deps);

    const record = await store.get(runId);
    const second = record?.attempts[1]?.nodes ?? [];
    expect(second.map((n) => n.launchedForAttempt)).toEqual([2, 2]);
    expect(second.map((n) => n.instanceId)).not.toContain(replacement.instanceId);
    expect(record?.attempts[0]?.replacement?.releasedAt).toEqual(expect.any(String));
    const live = (await compute.listTaggedInstances()).filter((i) => i.runId === runId).map((i) => i.instanceId);
    expect(live).not.toContain(replacement.instanceId);
    expect(live.sort()).toEqual(second.map((n) => n.instanceId).sort());
    expect(live).not.toContain(nodes[0]?.instanceId);
  });

  it('launches the rank itself when the replacement is gone', async () => {
    const { runId, replacement } = await warnedRun(1, READY);
    await compute.kill(replacement.instanceId);

    const result = await provisionInstance({ runId, attempt: 2, resumeFrom: null, placement: null, waitingSince: null }, deps);

    // Not waited for, not marked prepared: the readiness checks then find what the launch gave.
    expect(result).toMatchObject({ launched: true });
    expect(result).not.toHaveProperty('prepared');
    expect((await store.get(runId))?.attempts[1]?.nodes?.[1]?.readyAt).toBeUndefined();
  });
});

/** `warnedRun` as ReleaseResources finds it: the warned node still running and the attempt not ended. */
const beforeRelease = (warned: number, progress: Partial<Replacement>) => warnedRun(warned, progress, undefined, { released: false });

describe('ReleaseResources of a multi-node attempt that ends in a retry after a warning', () => {
  const retry = { action: 'retry', nextAttempt: 2 };
  const live = async (runId: string) => (await compute.listTaggedInstances()).filter((i) => i.runId === runId).map((i) => i.instanceId).sort();

  it('terminates the warned node alone; the healthy node and the replacement prepared for attempt 2 keep running', async () => {
    const { runId, nodes, replacement } = await beforeRelease(1, COPIED);

    const released = await releaseResources({ runId, recovery: retry, error: { Error: 'Spot.Interrupted', Cause: '{}' } }, deps);

    expect(released.terminated).toEqual([nodes[1]?.instanceId]);
    expect(await live(runId)).toEqual([nodes[0]?.instanceId, replacement.instanceId].sort());
    const attempt = (await store.get(runId))?.attempts[0];
    expect(attempt?.nodes?.map((n) => n.releasedAt === undefined)).toEqual([true, false]);
    expect(attempt?.replacement?.releasedAt).toBeUndefined();
  });

  it("with nodeRecovery 'relaunch-all' (the bench's comparison) every node goes, the replacement for attempt 2 stays", async () => {
    const { runId, replacement } = await beforeRelease(1, COPIED);

    await releaseResources({ runId, recovery: retry, error: { Error: 'Spot.Interrupted', Cause: '{}' } }, { ...deps, config: { ...deps.config, nodeRecovery: 'relaunch-all' } });

    expect(await live(runId)).toEqual([replacement.instanceId]);
    expect((await store.get(runId))?.attempts[0]?.nodes?.map((n) => n.releasedAt === undefined)).toEqual([false, false]);
  });

  it('when the run ends instead (no retry), every node and the replacement go, and the replacement is recorded released', async () => {
    const { runId } = await beforeRelease(0, READY);

    await releaseResources({ runId, recovery: { action: 'fail', status: 'CANCELLED' }, error: { Error: 'Run.Cancelled', Cause: '{}' } }, deps);

    expect(await live(runId)).toEqual([]);
    expect((await store.get(runId))?.attempts[0]?.replacement?.releasedAt).toEqual(expect.any(String));
  });
});
