import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DetachVolumeCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as attachment from '../../functions/volumes/prewarm-attachment';
import * as cleanup from '../../functions/volumes/prewarm-cleanup';
import * as createVolume from '../../functions/volumes/prewarm-create-volume';
import * as fillVolume from '../../functions/volumes/prewarm-fill-volume';
import * as helperInstance from '../../functions/volumes/helper-instance';
import * as recordVolume from '../../functions/volumes/prewarm-record-volume';
import * as snapshotVolume from '../../functions/volumes/prewarm-snapshot-volume';
import { loadAsl, localLambdaArn } from '../../local/asl';
import { LocalStateMachine } from '../../local/state-machine-runner';
import { VOLUME_EXIT } from '../../shared/agent/volume-commands';
import type { VolumeDeps } from '../../shared/composition/volumes';
import type { VolumeEntry } from '../../shared/ports/catalog';
import { CONSOLE_OWNER } from '../../shared/usecases/validate-run';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { FakeAws, type CommandOutcome } from './fake-aws';
import { volumeDeps } from './world';

const DATASET = 's3://datasets-bucket/imagenet/';
const ALICE = 'arn:aws:iam::123456789012:user/alice';
const BOB = 'arn:aws:iam::123456789012:role/bob';
const request = { dataset: DATASET, az: 'us-east-1a', sizeGiB: 200, type: 'gp3', iops: 6000, throughput: 500 };
/** The execution input as POST /volumes starts it: the request in the caller's name. */
const owned = (body: unknown, owner = ALICE) => ({ owner, request: body });
/** A catalogued volume of `owner` (made by an earlier prewarm), with its snapshot in the fake account. */
async function catalogued(owner: string, snapshotId: string, overrides: Partial<VolumeEntry> = {}): Promise<VolumeEntry> {
  fake.snapshots.set(snapshotId, { id: snapshotId, state: 'completed', volumeSize: 100, tags: { 'runctl:volume': 'prewarm:earlier' }, polls: 0 });
  const entry: VolumeEntry = {
    owner, datasetUri: DATASET, sizeGiB: 100, az: 'us-east-1b', volumeId: 'vol-0000000000000e001', snapshotId, volumeType: 'gp3',
    bytes: 1, files: 1, createdAt: '2026-11-20T00:00:00.000Z', prewarmId: `prewarm-earlier-${snapshotId}`, ...overrides,
  };
  await deps.catalog.putVolume(entry);
  return entry;
}
const filled: CommandOutcome = {
  status: 'Success',
  stdout: 'some progress\n{"files":3,"bytes":1234,"sourceFiles":3,"sourceBytes":1234,"device":"/dev/nvme1n1"}\n',
};

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
  fake.commandOutcome = () => filled;
  deps = await volumeDeps(fake, dynalite.endpoint, 'prewarm');
});

async function prewarm(input: unknown, options: { beforeRecord?: () => Promise<void> } = {}) {
  sequence += 1;
  const record = recordVolume.createHandler(deps);
  const machine = new LocalStateMachine({
    definition: loadAsl('prewarm-volume', localLambdaArn),
    lambdas: {
      PrewarmCreateVolumeLambdaFunction: createVolume.createHandler(deps),
      HelperInstanceLambdaFunction: helperInstance.createHandler(deps),
      PrewarmAttachmentLambdaFunction: attachment.createHandler(deps),
      PrewarmFillVolumeLambdaFunction: fillVolume.createHandler(deps),
      PrewarmSnapshotVolumeLambdaFunction: snapshotVolume.createHandler(deps),
      PrewarmRecordVolumeLambdaFunction: async (event: unknown, context: Parameters<typeof record>[1]) => {
        await options.beforeRecord?.();
        return record(event, context);
      },
      PrewarmCleanupLambdaFunction: cleanup.createHandler(deps),
    },
    fastWaits: true,
  });
  const name = `prewarm-${sequence}`;
  const execution = machine.start(input, name);
  return { name, execution, outcome: await execution.outcome };
}

/** What is left in the account after the execution. */
function leftovers() {
  return {
    liveInstances: [...fake.instances.values()].filter((i) => i.state !== 'terminated').map((i) => i.id),
    volumes: [...fake.volumes.keys()],
    snapshots: [...fake.snapshots.keys()],
  };
}

describe('prewarm-volume state machine', () => {
  it('creates, fills, verifies, detaches and snapshots the volume, terminates the helper and catalogues it', async () => {
    const { outcome, execution, name } = await prewarm(owned(request));

    expect(outcome).toMatchObject({
      status: 'SUCCEEDED',
      output: { owner: ALICE, datasetUri: DATASET, sizeGiB: 200, az: 'us-east-1a', files: 3, bytes: 1234, volumeType: 'gp3', prewarmId: name },
    });
    const [volume] = [...fake.volumes.values()];
    const [snapshot] = [...fake.snapshots.values()];
    expect(fake.volumes.size).toBe(1);
    expect(volume).toMatchObject({ az: 'us-east-1a', state: 'available', attachment: undefined, size: 200 });
    expect(volume?.tags).toMatchObject({ 'runctl:run': name, 'runctl:volume': `prewarm:${name}`, 'runctl:dataset': DATASET, 'runctl:keep': 'true' });
    // The tags the restore permission is conditioned on (serverless.yml: CreateVolume on snapshot/*).
    expect(snapshot).toMatchObject({ state: 'completed', tags: { 'runctl:prewarm': name, 'runctl:volume': `prewarm:${name}` } });
    expect(await deps.catalog.getVolume(ALICE, DATASET)).toMatchObject({ volumeId: volume?.id, snapshotId: snapshot?.id, files: 3, bytes: 1234 });
    expect(await deps.catalog.getVolume(BOB, DATASET)).toBeUndefined();

    const create = fake.ec2.commandCalls(CreateVolumeCommand)[0]?.args[0].input;
    expect(create).toMatchObject({ AvailabilityZone: 'us-east-1a', Size: 200, VolumeType: 'gp3', Iops: 6000, Throughput: 500, ClientToken: `prewarm-${name}` });
    const launch = fake.ec2.commandCalls(RunInstancesCommand)[0]?.args[0].input;
    expect(launch).toMatchObject({ InstanceType: 'c6i.large', SubnetId: 'subnet-0aaa', IamInstanceProfile: { Name: 'runctl-helper' } });
    expect(launch?.InstanceMarketOptions).toBeUndefined();
    expect(fake.ec2.commandCalls(AttachVolumeCommand)[0]?.args[0].input).toMatchObject({ VolumeId: volume?.id, Device: '/dev/sdf' });
    expect(fake.ec2.commandCalls(DetachVolumeCommand)).toHaveLength(1);
    expect(leftovers().liveInstances).toEqual([]);

    // The fill script formats only a blank device and syncs this dataset onto this volume.
    const script = fake.scripts[0] ?? '';
    expect(script).toContain(`volume=${volume?.id}`);
    expect(script).toContain('prepare_filesystem "$dev" yes');
    expect(script).toContain('aws s3 sync "s3://$bucket/$prefix" "$mnt/" --delete');
    // The helper is terminated before the long snapshot wait, and the snapshot is polled in the ASL.
    const states = execution.statesEntered();
    expect(states.indexOf('TerminateHelper')).toBeLessThan(states.indexOf('SnapshotVolume'));
    expect(states.filter((s) => s === 'CheckSnapshot').length).toBeGreaterThanOrEqual(1);
    expect(states).not.toContain('CleanUp');
  });

  it('restores the snapshot of the owner\'s own entry without formatting it, and replaces that entry', async () => {
    const earlier = await catalogued(ALICE, 'snap-0123456789abcdef0');
    fake.snapshotPolls = 3;

    const { outcome, execution, name } = await prewarm(owned({ ...request, fromSnapshot: earlier.snapshotId, iops: undefined, throughput: undefined }));

    expect(outcome.status).toBe('SUCCEEDED');
    expect(fake.ec2.commandCalls(CreateVolumeCommand)[0]?.args[0].input).toMatchObject({ SnapshotId: 'snap-0123456789abcdef0' });
    expect(fake.scripts[0]).toContain('prepare_filesystem "$dev" no');
    expect(execution.statesEntered().filter((s) => s === 'CheckSnapshot')).toHaveLength(3);
    expect(await deps.catalog.getVolume(ALICE, DATASET)).toMatchObject({ prewarmId: name, az: 'us-east-1a' });
  });

  it.each([
    ["another owner's catalogued snapshot of the same dataset", async () => (await catalogued(BOB, 'snap-0bbbbbbbbbbbbbbbb')).snapshotId],
    ['a snapshot of the account that no catalog entry records', async () => {
      fake.snapshots.set('snap-0cccccccccccccccc', { id: 'snap-0cccccccccccccccc', state: 'completed', volumeSize: 100, tags: {}, polls: 0 });
      return 'snap-0cccccccccccccccc';
    }],
    ["a snapshot the owner's entry no longer names", async () => {
      await catalogued(ALICE, 'snap-0aaaaaaaaaaaaaaaa');
      fake.snapshots.set('snap-0dddddddddddddddd', { id: 'snap-0dddddddddddddddd', state: 'completed', volumeSize: 100, tags: { 'runctl:volume': 'prewarm:old' }, polls: 0 });
      return 'snap-0dddddddddddddddd';
    }],
  ])('refuses to restore %s, before any volume exists', async (_label, snapshotOf) => {
    const snapshotId = await snapshotOf();

    const { outcome } = await prewarm(owned({ ...request, fromSnapshot: snapshotId }));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.Invalid', cause: expect.stringContaining('fromSnapshot: must be the snapshot of your catalogued volume') });
    expect(fake.ec2.commandCalls(CreateVolumeCommand)).toHaveLength(0);
    expect(fake.ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
  });

  it('gives a second owner prewarming the same dataset an entry of their own, and leaves the first one\'s as it was', async () => {
    const alices = await catalogued(ALICE, 'snap-0aaaaaaaaaaaaaaaa');

    const { outcome, name } = await prewarm(owned(request, BOB));

    expect(outcome.status).toBe('SUCCEEDED');
    expect(await deps.catalog.getVolume(ALICE, DATASET)).toEqual(alices);
    expect(await deps.catalog.getVolume(BOB, DATASET)).toMatchObject({ owner: BOB, prewarmId: name });
    expect((await deps.catalog.listVolumes(ALICE)).items).toEqual([alices]);
    expect((await deps.catalog.listVolumes(BOB)).items.map((v) => v.prewarmId)).toEqual([name]);
  });

  it('fails with Catalog.Conflict when another prewarm recorded the dataset meanwhile, keeps that entry and deletes its own volume and snapshot', async () => {
    let other: VolumeEntry | undefined;

    const { outcome } = await prewarm(owned(request), {
      beforeRecord: async () => {
        other = await catalogued(ALICE, 'snap-0eeeeeeeeeeeeeeee', { prewarmId: 'prewarm-concurrent' });
      },
    });

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Catalog.Conflict', cause: expect.stringContaining('Another prewarm recorded the volume of') });
    expect(await deps.catalog.getVolume(ALICE, DATASET)).toEqual(other);
    expect(leftovers()).toEqual({ liveInstances: [], volumes: [], snapshots: ['snap-0eeeeeeeeeeeeeeee'] });
  });

  it('records a prewarm started from the console with a bare request under the console owner', async () => {
    const { outcome } = await prewarm(request);

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { owner: CONSOLE_OWNER } });
    expect(await deps.catalog.getVolume(CONSOLE_OWNER, DATASET)).toBeDefined();
    expect(await deps.catalog.getVolume(ALICE, DATASET)).toBeUndefined();
  });

  it('fails with Dataset.Empty and leaves no helper, attachment, volume or snapshot', async () => {
    fake.commandOutcome = () => ({ status: 'Failed', exitCode: VOLUME_EXIT.datasetEmpty, stderr: 'runctl prewarm: dataset s3://datasets-bucket/imagenet/ is empty (no object under it)' });

    const { outcome, execution } = await prewarm(owned(request));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Dataset.Empty', cause: expect.stringContaining('is empty') });
    expect(execution.statesEntered()).toContain('CleanUp');
    expect(fake.ec2.commandCalls(DetachVolumeCommand).some((c) => c.args[0].input.Force === true)).toBe(true);
    expect(fake.ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(1);
    expect(fake.ec2.commandCalls(DeleteVolumeCommand)).toHaveLength(1);
    expect(leftovers()).toEqual({ liveInstances: [], volumes: [], snapshots: [] });
    expect(await deps.catalog.getVolume(ALICE, DATASET)).toBeUndefined();
  });

  it('fails a verification mismatch with Volume.Failed and cleans up', async () => {
    fake.commandOutcome = () => ({ status: 'Failed', exitCode: VOLUME_EXIT.verifyFailed, stderr: 'runctl prewarm: verification failed: volume has 2 files / 1000 bytes, source lists 3 / 1234' });

    const { outcome } = await prewarm(owned(request));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Volume.Failed', cause: expect.stringContaining('verification failed') });
    expect(leftovers()).toEqual({ liveInstances: [], volumes: [], snapshots: [] });
  });

  it('fails a catalogued snapshot that no longer exists with Snapshot.Missing before creating anything', async () => {
    await catalogued(ALICE, 'snap-0000000000000dead');
    fake.snapshots.delete('snap-0000000000000dead');

    const { outcome } = await prewarm(owned({ ...request, fromSnapshot: 'snap-0000000000000dead' }));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Snapshot.Missing' });
    expect(fake.ec2.commandCalls(CreateVolumeCommand)).toHaveLength(0);
    expect(fake.ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
  });

  it('fails a volume attached elsewhere with Volume.InUse, then terminates the helper and deletes the volume', async () => {
    fake.failNext.set('AttachVolumeCommand', Object.assign(new Error('vol is in use'), { name: 'VolumeInUse', $metadata: { httpStatusCode: 400 } }));

    const { outcome } = await prewarm(owned(request));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Volume.InUse' });
    expect(fake.ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(1);
    expect(fake.ec2.commandCalls(DeleteVolumeCommand)).toHaveLength(1);
    expect(leftovers()).toEqual({ liveInstances: [], volumes: [], snapshots: [] });
  });

  it('deletes the snapshot and the volume when the snapshot fails', async () => {
    fake.snapshotPolls = 100;
    deps.config.snapshotMaxPolls = 2;

    const { outcome } = await prewarm(owned(request));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Snapshot.Failed' });
    expect(fake.ec2.commandCalls(DeleteSnapshotCommand)).toHaveLength(1);
    expect(leftovers()).toEqual({ liveInstances: [], volumes: [], snapshots: [] });
  });

  it('retries a throttled snapshot and still makes exactly one', async () => {
    fake.failNext.set('CreateSnapshotCommand', Object.assign(new Error('slow down'), { name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } }));

    const { outcome, execution } = await prewarm(owned(request));

    expect(outcome.status).toBe('SUCCEEDED');
    expect(execution.history.some((e) => e.type === 'StateRetried' && e.state.name === 'SnapshotVolume')).toBe(true);
    expect(fake.ec2.commandCalls(CreateSnapshotCommand)).toHaveLength(2);
    expect(fake.snapshots.size).toBe(1);
  });

  it.each([
    ['a dataset that is not an S3 prefix', { ...request, dataset: '/local/data' }, 'dataset'],
    ['throughput on an io2 volume', { ...request, type: 'io2', throughput: 500 }, 'throughput'],
  ])('refuses %s with Run.Invalid and creates nothing', async (_label, input, field) => {
    const { outcome } = await prewarm(owned(input));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Run.Invalid', cause: expect.stringContaining(field) });
    expect(fake.ec2.commandCalls(CreateVolumeCommand)).toHaveLength(0);
  });
});
