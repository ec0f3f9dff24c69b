import { AttachVolumeCommand, CreateVolumeCommand, DeleteVolumeCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as runVolume from '../../functions/volumes/run-volume';
import type { VolumeDeps } from '../../shared/composition/volumes';
import { parseRunSpec, type RunSpecInput } from '../../shared/domain/run-spec';
import { restoredVolumeToken } from '../../shared/usecases/volume-run';
import { lambdaContext } from '../support/api-events';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { FakeAws } from './fake-aws';
import { volumeDeps } from './world';

const DATASET = 's3://datasets-bucket/imagenet/';
const ALICE = 'arn:aws:iam::123456789012:user/alice';
const BOB = 'arn:aws:iam::123456789012:role/bob';

let dynalite: RunningDynalite;
let fake: FakeAws;
let deps: VolumeDeps;
let sequence = 0;

beforeAll(async () => {
  dynalite = await startDynalite();
});
afterAll(async () => dynalite.close());
beforeEach(async () => {
  fake = new FakeAws();
  fake.commandOutcome = () => ({ status: 'Success', stdout: '{"device":"/dev/nvme1n1","mountPath":"/mnt/dataset","initialized":true}\n' });
  deps = await volumeDeps(fake, dynalite.endpoint, 'run-volume');
});

/** A dataset catalogued for `owner`: its volume in us-east-1a and a completed snapshot. */
async function catalogue(owner = ALICE): Promise<{ volumeId: string }> {
  const volumeId = 'vol-0000000000000aaaa';
  fake.volumes.set(volumeId, { id: volumeId, az: 'us-east-1a', state: 'available', size: 200, type: 'gp3', tags: { 'runctl:volume': 'prewarm:p1' } });
  fake.snapshots.set('snap-0000000000000aaaa', { id: 'snap-0000000000000aaaa', state: 'completed', volumeSize: 200, tags: {}, polls: 0 });
  await deps.catalog.putVolume({
    owner, datasetUri: DATASET, sizeGiB: 200, az: 'us-east-1a', volumeId, snapshotId: 'snap-0000000000000aaaa', volumeType: 'gp3',
    bytes: 1234, files: 3, createdAt: '2026-11-25T10:00:00Z', prewarmId: 'p1',
  });
  return { volumeId };
}

/** A run record of `owner` with a volume in its spec and an instance in `az`. */
async function run(az: string, volume: RunSpecInput['volume'] | 'none' = { dataset: DATASET, mountPath: '/mnt/dataset', initialize: true }, owner = ALICE) {
  sequence += 1;
  const runId = `r-vol-${sequence}`;
  const instanceId = `i-${sequence.toString(16).padStart(17, '0')}`;
  fake.instances.set(instanceId, { id: instanceId, az, state: 'running', type: 'g5.xlarge', tags: { 'runctl:run': runId } });
  const now = new Date().toISOString();
  await deps.store.create({
    runId, owner, specHash: 'h', status: 'STARTING', createdAt: now, updatedAt: now,
    spec: parseRunSpec({ name: 'r', code: { bundle: 's3://runctl-runs/b.tar.gz', entrypoint: 'train.py' }, instance: { types: ['g5.xlarge'] }, volume: volume === 'none' ? undefined : volume }),
    attempts: [{ attempt: 1, instanceId, availabilityZone: az, spot: true, startedAt: now }], costUsd: 0, interruptions: 0, userFailures: 0,
  });
  const handler = runVolume.createHandler(deps);
  return {
    runId,
    instanceId,
    attach: () => handler({ action: 'attach', runId, instanceId, availabilityZone: az }, lambdaContext()),
    check: (volumeId: string, commandId: string) => handler({ action: 'check', runId, instanceId, volumeId, commandId, polls: 0 }, lambdaContext()),
    release: () => handler({ action: 'release', runId }, lambdaContext()),
  };
}

describe('run dataset volumes', () => {
  it('takes the free catalogued volume in the same AZ, mounts it read-only, and frees it at release', async () => {
    const { volumeId } = await catalogue();
    const r = await run('us-east-1a');

    const attached = await r.attach();
    expect(attached).toMatchObject({ skipped: false, done: false, volumeId });
    expect(fake.ec2.commandCalls(CreateVolumeCommand)).toHaveLength(0);
    expect(fake.volumes.get(volumeId)?.attachment?.instanceId).toBe(r.instanceId);
    expect((await deps.catalog.getVolume(ALICE, DATASET))?.claimedBy).toBe(r.runId);
    expect(fake.scripts[0]).toContain('mount -o ro,noatime');
    // The catalogued volume was written, not restored: no initialization read.
    expect(fake.scripts[0]).not.toContain('fio');

    const commandId = typeof attached === 'object' && attached !== null && 'commandId' in attached ? String(attached.commandId) : '';
    expect(await r.check(volumeId, commandId)).toMatchObject({ done: true, mountPath: '/mnt/dataset' });

    expect(await r.release()).toMatchObject({ released: { detached: [volumeId], deleted: [] } });
    expect(fake.volumes.get(volumeId)).toMatchObject({ state: 'available', attachment: undefined });
    expect((await deps.catalog.getVolume(ALICE, DATASET))?.claimedBy).toBeUndefined();
  });

  it('restores a fresh copy for a second run while the first holds the catalogued volume, and deletes it at release', async () => {
    const { volumeId } = await catalogue();
    await (await run('us-east-1a')).attach();
    const second = await run('us-east-1a');

    const attached = await second.attach();

    const create = fake.ec2.commandCalls(CreateVolumeCommand)[0]?.args[0].input;
    expect(create).toMatchObject({ AvailabilityZone: 'us-east-1a', SnapshotId: 'snap-0000000000000aaaa', Size: 200 });
    const restoredId = typeof attached === 'object' && attached !== null && 'volumeId' in attached ? String(attached.volumeId) : '';
    expect(restoredId).not.toBe(volumeId);
    expect(fake.volumes.get(restoredId)?.tags).toMatchObject({ 'runctl:run': second.runId, 'runctl:volume': `run:${second.runId}` });
    expect(fake.scripts.at(-1)).toContain('fio --filename="$dev" --rw=read');

    await second.release();
    expect(fake.ec2.commandCalls(DeleteVolumeCommand).map((c) => c.args[0].input.VolumeId)).toEqual([restoredId]);
    expect(fake.volumes.has(restoredId)).toBe(false);
    expect(fake.volumes.has(volumeId)).toBe(true);
  });

  it('restores in the instance AZ rather than attaching across AZs, and keeps the copy when the spec says so', async () => {
    await catalogue();
    const r = await run('us-east-1b', { dataset: DATASET, mountPath: '/mnt/dataset', keep: true });

    await r.attach();

    const attach = fake.ec2.commandCalls(AttachVolumeCommand)[0]?.args[0].input;
    const restored = fake.volumes.get(attach?.VolumeId ?? '');
    expect(restored).toMatchObject({ az: 'us-east-1b', tags: { 'runctl:keep': 'true' } });
    expect(await r.release()).toMatchObject({ released: { kept: [restored?.id], deleted: [] } });
    expect(fake.volumes.has(restored?.id ?? '')).toBe(true);
  });

  it('says which dataset is not catalogued', async () => {
    const r = await run('us-east-1a');

    await expect(r.attach()).rejects.toMatchObject({ name: 'Volume.NotCatalogued', message: expect.stringContaining('POST /volumes') });
    expect(fake.ec2.commandCalls(AttachVolumeCommand)).toHaveLength(0);
  });

  it.each([
    ['the same AZ (no claim on the volume)', 'us-east-1a'],
    ['another AZ (no restore of the snapshot)', 'us-east-1b'],
  ])("never gives another owner's run the catalogued dataset in %s: the dataset is not catalogued for its owner", async (_label, az) => {
    const { volumeId } = await catalogue(ALICE);
    const bobs = await run(az, undefined, BOB);

    await expect(bobs.attach()).rejects.toMatchObject({ name: 'Volume.NotCatalogued' });
    expect(fake.ec2.commandCalls(CreateVolumeCommand)).toHaveLength(0);
    expect(fake.ec2.commandCalls(AttachVolumeCommand)).toHaveLength(0);
    expect((await deps.catalog.getVolume(ALICE, DATASET))?.claimedBy).toBeUndefined();
    expect(fake.volumes.get(volumeId)?.attachment).toBeUndefined();
  });

  it('refuses with Volume.AzMismatch when the only copy is a volume in another AZ', async () => {
    await catalogue();
    fake.snapshots.clear();
    const r = await run('us-east-1b');

    await expect(r.attach()).rejects.toMatchObject({ name: 'Volume.AzMismatch' });
  });

  it('skips a run without a volume', async () => {
    const r = await run('us-east-1a', 'none');
    expect(await r.attach()).toEqual({ skipped: true, done: true });
    expect(await r.release()).toEqual({ skipped: true, done: true });
  });
});

describe('a run\'s status and attempts while its volume is attached', () => {
  const volumeOf = (result: unknown) => (typeof result === 'object' && result !== null && 'volumeId' in result ? String(result.volumeId) : '');

  it('moves the run STARTING → ATTACHING_VOLUME, and a retried attach leaves it there', async () => {
    await catalogue();
    const r = await run('us-east-1a');

    await r.attach();
    expect((await deps.store.get(r.runId))?.status).toBe('ATTACHING_VOLUME');
    await r.attach();

    expect((await deps.store.get(r.runId))?.status).toBe('ATTACHING_VOLUME');
  });

  it.each([
    ['the catalogued volume', 'us-east-1a'],
    ['a restored copy', 'us-east-1b'],
  ])('a retried attach finds %s it already attached, and restores nothing more', async (_, az) => {
    await catalogue();
    const r = await run(az);
    const first = volumeOf(await r.attach());

    const retried = volumeOf(await r.attach());

    expect(retried).toBe(first);
    expect(fake.volumes.get(first)?.attachment?.instanceId).toBe(r.instanceId);
    expect(fake.ec2.commandCalls(CreateVolumeCommand)).toHaveLength(az === 'us-east-1a' ? 0 : 1);
  });

  it('ends the attempt as a cancel when the run was cancelled before the attach, touching no volume', async () => {
    await catalogue();
    const r = await run('us-east-1a');
    await deps.store.transition(r.runId, 'STARTING', 'CANCELLING');

    await expect(r.attach()).rejects.toMatchObject({ name: 'Run.Cancelled' });
    expect(fake.ec2.commandCalls(AttachVolumeCommand)).toHaveLength(0);
    expect((await deps.catalog.getVolume(ALICE, DATASET))?.claimedBy).toBeUndefined();
  });

  it('restores the next attempt\'s copy in the same AZ under a new client token, after the first copy was deleted', async () => {
    await catalogue();
    const r = await run('us-east-1b');
    const firstCopy = volumeOf(await r.attach());
    await r.release();
    expect(fake.volumes.has(firstCopy)).toBe(false);
    // The recovery path: the next attempt gets an instance in the same AZ.
    const next = 'i-0000000000000beef';
    fake.instances.set(next, { id: next, az: 'us-east-1b', state: 'running', type: 'g5.xlarge', tags: { 'runctl:run': r.runId } });
    await deps.store.transition(r.runId, 'ATTACHING_VOLUME', 'RECOVERING');
    await deps.store.transition(r.runId, 'RECOVERING', 'PROVISIONING');
    await deps.store.appendAttempt(r.runId, { attempt: 2, instanceId: next, availabilityZone: 'us-east-1b', spot: true, startedAt: new Date().toISOString() });
    await deps.store.transition(r.runId, 'PROVISIONING', 'STARTING');

    const secondCopy = volumeOf(await runVolume.createHandler(deps)({ action: 'attach', runId: r.runId, instanceId: next, availabilityZone: 'us-east-1b' }, lambdaContext()));

    const tokens = fake.ec2.commandCalls(CreateVolumeCommand).map((c) => c.args[0].input.ClientToken);
    expect(tokens).toEqual([restoredVolumeToken(r.runId, 1, 'us-east-1b'), restoredVolumeToken(r.runId, 2, 'us-east-1b')]);
    expect(secondCopy).not.toBe(firstCopy);
    expect(fake.volumes.get(secondCopy)?.attachment?.instanceId).toBe(next);
  });
});

describe('restoredVolumeToken', () => {
  const long = `r-${'x'.repeat(78)}`;

  it.each([
    ['r-1a2b3c4d5e6f7a8b', 1, 'us-east-1a', 'run-r-1a2b3c4d5e6f7a8b-1-us-east-1a'],
    ['r-1a2b3c4d5e6f7a8b', 2, 'us-east-1a', 'run-r-1a2b3c4d5e6f7a8b-2-us-east-1a'],
    ['r-1a2b3c4d5e6f7a8b', 2, 'us-east-1b', 'run-r-1a2b3c4d5e6f7a8b-2-us-east-1b'],
    ['r-1a2b3c4d5e6f7a8b', 12, 'ap-southeast-2c', 'run-r-1a2b3c4d5e6f7a8b-12-ap-southeast-2c'],
  ])('run %s, attempt %i, %s → %s', (runId, attempt, az, token) => {
    expect(restoredVolumeToken(runId, attempt, az)).toBe(token);
  });

  it.each([
    ['attempts', restoredVolumeToken('r-1', 1, 'us-east-1a'), restoredVolumeToken('r-1', 2, 'us-east-1a')],
    ['AZs', restoredVolumeToken('r-1', 1, 'us-east-1a'), restoredVolumeToken('r-1', 1, 'us-east-1b')],
    ['runs whose id ends in a digit', restoredVolumeToken('r-1', 11, 'us-east-1a'), restoredVolumeToken('r-11', 1, 'us-east-1a')],
    ['long run ids', restoredVolumeToken(long, 1, 'us-east-1a'), restoredVolumeToken(long, 2, 'us-east-1a')],
  ])('differs between %s', (_, a, b) => {
    expect(a).not.toBe(b);
  });

  it('stays within EC2\'s 64 characters and is stable for a long run id', () => {
    const token = restoredVolumeToken(long, 3, 'us-east-1a');
    expect(token.length).toBeLessThanOrEqual(64);
    expect(restoredVolumeToken(long, 3, 'us-east-1a')).toBe(token);
  });
});
