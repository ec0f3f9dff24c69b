import { EC2Client, RunInstancesCommand, DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { Ec2Volumes } from '../../shared/adapters/ec2-volumes';
import { localClientConfig } from '../support/aws-clients';
import { TEST_STACK } from '../support/stack';

const once = { attempts: 1, baseMs: 1 };
const run = `moto-${Date.now().toString(36)}`;

describe('EC2 volumes adapter on moto_server', () => {
  let ec2: EC2Client;
  let volumes: Ec2Volumes;
  let instanceId: string;
  let instanceAz: string;

  beforeAll(async () => {
    ec2 = new EC2Client(localClientConfig(inject('motoEndpoint')));
    volumes = new Ec2Volumes({ ec2, stack: TEST_STACK, throttleRetry: once, waiterDelay: { min: 1, max: 1 } });
    const images = await ec2.send(new DescribeImagesCommand({}));
    const imageId = images.Images?.[0]?.ImageId ?? 'ami-12c6146b';
    const launched = await ec2.send(new RunInstancesCommand({ ImageId: imageId, InstanceType: 'c6i.large', MinCount: 1, MaxCount: 1, Placement: { AvailabilityZone: 'us-east-1a' } }));
    instanceId = launched.Instances?.[0]?.InstanceId ?? '';
    instanceAz = launched.Instances?.[0]?.Placement?.AvailabilityZone ?? '';
  });

  it('creates a tagged gp3 volume once per client token and finds it by tag', async () => {
    const request = {
      availabilityZone: 'us-east-1a', sizeGiB: 20, type: 'gp3' as const, iops: 3000, throughput: 125,
      clientToken: `${run}-create`, tags: { 'runctl:volume': `prewarm:${run}`, 'runctl:prewarm': run },
    };

    const first = await volumes.create(request);
    const again = await volumes.create(request);

    expect(first).toMatchObject({ availabilityZone: 'us-east-1a', sizeGiB: 20, state: expect.stringMatching(/creating|available/) });
    expect(again.volumeId).toBe(first.volumeId);
    expect((await volumes.findTagged('runctl:prewarm', run)).map((v) => v.volumeId)).toEqual([first.volumeId]);
    expect((await volumes.describe(first.volumeId))?.tags).toMatchObject({
      'runctl:volume': `prewarm:${run}`,
      'runctl:request': `${run}-create`,
      'runctl:stack': TEST_STACK,
    });
  });

  it("never finds another stack's volumes or snapshots, even under the same tags", async () => {
    const other = new Ec2Volumes({ ec2, stack: 'runctl-prod', throttleRetry: once, waiterDelay: { min: 1, max: 1 } });
    const request = { availabilityZone: 'us-east-1a', sizeGiB: 8, type: 'gp3' as const, clientToken: `${run}-shared`, tags: { 'runctl:prewarm': `${run}-shared` } };
    const theirs = await other.create(request);
    const theirSnapshot = await other.createSnapshot(theirs.volumeId, { description: 'theirs', tags: { 'runctl:prewarm': `${run}-shared` } });

    const ours = await volumes.create({ ...request, clientToken: `${run}-shared-ours` });

    expect(ours.volumeId).not.toBe(theirs.volumeId);
    expect((await volumes.findTagged('runctl:prewarm', `${run}-shared`)).map((v) => v.volumeId)).toEqual([ours.volumeId]);
    expect(await volumes.findTaggedSnapshots('runctl:prewarm', `${run}-shared`)).toEqual([]);
    expect((await other.findTaggedSnapshots('runctl:prewarm', `${run}-shared`)).map((s) => s.snapshotId)).toEqual([theirSnapshot]);
    expect((await volumes.describeSnapshot(theirSnapshot))?.tags).toMatchObject({ 'runctl:stack': 'runctl-prod' });
  });

  it('attaches, waits in-use, refuses a second attachment, detaches and deletes', async () => {
    const volume = await volumes.create({ availabilityZone: instanceAz, sizeGiB: 8, type: 'gp3', clientToken: `${run}-attach`, tags: {} });
    await volumes.waitAvailable(volume.volumeId, 10);

    await volumes.attach(volume.volumeId, instanceId, '/dev/sdf');
    await volumes.waitAttached(volume.volumeId, 10);
    const attached = await volumes.describe(volume.volumeId);
    // A retried attach to the same instance is success, not a conflict.
    await volumes.attach(volume.volumeId, instanceId, '/dev/sdf');

    expect(attached).toMatchObject({ state: 'in-use', attachments: [{ instanceId, device: '/dev/sdf' }] });
    await volumes.detach(volume.volumeId, instanceId);
    await volumes.waitAvailable(volume.volumeId, 10);
    await volumes.detach(volume.volumeId, instanceId);
    await volumes.delete(volume.volumeId);
    await volumes.delete(volume.volumeId);
    expect(await volumes.describe(volume.volumeId)).toBeUndefined();
  });

  it('refuses to delete an attached volume with Volume.InUse', async () => {
    const volume = await volumes.create({ availabilityZone: instanceAz, sizeGiB: 8, type: 'gp3', clientToken: `${run}-busy`, tags: {} });
    await volumes.attach(volume.volumeId, instanceId, '/dev/sdg');

    await expect(volumes.delete(volume.volumeId)).rejects.toMatchObject({ name: 'Volume.InUse' });
    await volumes.detach(volume.volumeId, instanceId);
    await volumes.delete(volume.volumeId);
  });

  it('snapshots, finds the snapshot by tag, restores from it, and deletes it', async () => {
    const volume = await volumes.create({ availabilityZone: 'us-east-1a', sizeGiB: 12, type: 'gp3', clientToken: `${run}-snap`, tags: {} });

    const snapshotId = await volumes.createSnapshot(volume.volumeId, { description: 'runctl dataset s3://b/p/', tags: { 'runctl:prewarm': `${run}-s` } });
    const snapshot = await volumes.describeSnapshot(snapshotId);
    const restored = await volumes.create({ availabilityZone: 'us-east-1b', sizeGiB: 12, type: 'gp3', snapshotId, clientToken: `${run}-restore`, tags: {} });

    expect(snapshot).toMatchObject({ snapshotId, state: expect.stringMatching(/pending|completed/), volumeSizeGiB: 12 });
    expect((await volumes.findTaggedSnapshots('runctl:prewarm', `${run}-s`)).map((s) => s.snapshotId)).toEqual([snapshotId]);
    expect(restored).toMatchObject({ availabilityZone: 'us-east-1b', snapshotId });
    await volumes.deleteSnapshot(snapshotId);
    await volumes.deleteSnapshot(snapshotId);
    expect(await volumes.describeSnapshot(snapshotId)).toBeUndefined();
  });

  it('names a missing snapshot Snapshot.Missing', async () => {
    await expect(
      volumes.create({ availabilityZone: 'us-east-1a', sizeGiB: 8, type: 'gp3', snapshotId: 'snap-0000000000000beef', clientToken: `${run}-missing`, tags: {} }),
    ).rejects.toMatchObject({ name: 'Snapshot.Missing' });
  });
});
