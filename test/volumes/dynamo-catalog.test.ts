import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoCatalog } from '../../shared/adapters/dynamo-catalog';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';

const DATASET = 's3://datasets-bucket/coco/';
const entry = {
  datasetUri: DATASET, sizeGiB: 50, az: 'us-east-1a', volumeId: 'vol-1', snapshotId: 'snap-1', volumeType: 'gp3',
  bytes: 10, files: 2, createdAt: '2026-11-25T00:00:00Z', prewarmId: 'prewarm-1',
};

describe('DynamoDB catalog', () => {
  let dynalite: RunningDynalite;
  let catalog: DynamoCatalog;

  beforeAll(async () => {
    dynalite = await startDynalite();
    const table = `catalog-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    catalog = new DynamoCatalog(dynamoDocumentClient(dynalite.endpoint), table);
    await catalog.putVolume(entry);
  });
  afterAll(async () => dynalite.close());

  it('lets one run claim the volume at a time, the same run again, and frees it only for its holder', async () => {
    expect(await catalog.claimVolume(DATASET, 'vol-1', 'r-1')).toBe(true);
    expect(await catalog.claimVolume(DATASET, 'vol-1', 'r-1')).toBe(true);
    expect(await catalog.claimVolume(DATASET, 'vol-1', 'r-2')).toBe(false);

    await catalog.releaseVolume(DATASET, 'r-2');
    expect((await catalog.getVolume(DATASET))?.claimedBy).toBe('r-1');
    await catalog.releaseVolume(DATASET, 'r-1');
    expect(await catalog.claimVolume(DATASET, 'vol-1', 'r-2')).toBe(true);
    await catalog.releaseVolume(DATASET, 'r-2');
  });

  it('refuses a claim on a volume the entry no longer names', async () => {
    expect(await catalog.claimVolume(DATASET, 'vol-old', 'r-3')).toBe(false);
    expect(await catalog.claimVolume('s3://datasets-bucket/none/', 'vol-1', 'r-3')).toBe(false);
  });

  it('stores images by bundle digest', async () => {
    const image = { bundleSha: 'd'.repeat(64), repository: 'runctl/training', imageUri: 'r@sha256:1', digest: 'sha256:1', dockerfile: 'Dockerfile', createdAt: 'now' };
    await catalog.putImage(image);
    expect(await catalog.getImage(image.bundleSha)).toEqual(image);
    expect(await catalog.getImage('e'.repeat(64))).toBeUndefined();
  });
});
