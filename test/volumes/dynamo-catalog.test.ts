import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoCatalog } from '../../shared/adapters/dynamo-catalog';
import type { ImageEntry, VolumeEntry } from '../../shared/ports/catalog';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from '../support/aws-clients';
import { startDynalite, type RunningDynalite } from '../support/dynalite';

const DATASET = 's3://datasets-bucket/coco/';
const ALICE = 'arn:aws:iam::123456789012:user/alice';
const BOB = 'arn:aws:iam::123456789012:role/bob';
const entry: VolumeEntry = {
  owner: ALICE, datasetUri: DATASET, sizeGiB: 50, az: 'us-east-1a', volumeId: 'vol-1', snapshotId: 'snap-1', volumeType: 'gp3',
  bytes: 10, files: 2, createdAt: '2026-11-25T00:00:00Z', prewarmId: 'prewarm-1',
};
const SHA = 'd'.repeat(64);
const image = (overrides: Partial<ImageEntry> = {}): ImageEntry => ({
  owner: ALICE, bundleSha: SHA, repository: 'runctl/training', imageUri: 'r@sha256:1', digest: 'sha256:1',
  tag: `bundle-${SHA}-build-1`, buildId: 'build-1', dockerfile: 'Dockerfile', createdAt: '2026-11-25T00:00:00Z', ...overrides,
});

describe('DynamoDB catalog', () => {
  let dynalite: RunningDynalite;
  let catalog: DynamoCatalog;
  let table: string;

  beforeAll(async () => {
    dynalite = await startDynalite();
    table = `catalog-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    catalog = new DynamoCatalog(dynamoDocumentClient(dynalite.endpoint), table);
    await catalog.putVolume(entry);
  });
  afterAll(async () => dynalite.close());

  it('lets one run claim the volume at a time, the same run again, and frees it only for its holder', async () => {
    expect(await catalog.claimVolume(ALICE, DATASET, 'vol-1', 'r-1')).toBe(true);
    expect(await catalog.claimVolume(ALICE, DATASET, 'vol-1', 'r-1')).toBe(true);
    expect(await catalog.claimVolume(ALICE, DATASET, 'vol-1', 'r-2')).toBe(false);

    await catalog.releaseVolume(ALICE, DATASET, 'r-2');
    expect((await catalog.getVolume(ALICE, DATASET))?.claimedBy).toBe('r-1');
    await catalog.releaseVolume(ALICE, DATASET, 'r-1');
    expect(await catalog.claimVolume(ALICE, DATASET, 'vol-1', 'r-2')).toBe(true);
    await catalog.releaseVolume(ALICE, DATASET, 'r-2');
  });

  it('refuses a claim on a volume the entry no longer names', async () => {
    expect(await catalog.claimVolume(ALICE, DATASET, 'vol-old', 'r-3')).toBe(false);
    expect(await catalog.claimVolume(ALICE, 's3://datasets-bucket/none/', 'vol-1', 'r-3')).toBe(false);
  });

  it("never shows, claims or frees one owner's volume for another", async () => {
    expect(await catalog.getVolume(BOB, DATASET)).toBeUndefined();
    expect(await catalog.claimVolume(BOB, DATASET, 'vol-1', 'r-bob')).toBe(false);
    expect((await catalog.listVolumes(BOB)).items).toEqual([]);
    expect((await catalog.listVolumes(ALICE)).items.map((v) => v.volumeId)).toEqual(['vol-1']);

    await catalog.claimVolume(ALICE, DATASET, 'vol-1', 'r-alice');
    await catalog.releaseVolume(BOB, DATASET, 'r-alice');
    expect((await catalog.getVolume(ALICE, DATASET))?.claimedBy).toBe('r-alice');
    await catalog.releaseVolume(ALICE, DATASET, 'r-alice');
  });

  it("keeps a second owner's volume of the same dataset beside the first, each in its own partition", async () => {
    const bobs = { ...entry, owner: BOB, volumeId: 'vol-bob', snapshotId: 'snap-bob', prewarmId: 'prewarm-bob' };
    await catalog.putVolume(bobs);

    expect(await catalog.getVolume(BOB, DATASET)).toEqual(bobs);
    expect((await catalog.getVolume(ALICE, DATASET))?.volumeId).toBe('vol-1');
    const items = (await dynamoDocumentClient(dynalite.endpoint).send(new ScanCommand({ TableName: table }))).Items ?? [];
    expect(items.filter((i) => i.datasetUri === DATASET).map((i) => [i.pk, i.sk, i.gsi1pk]).sort()).toEqual([
      [`VOLUME#${BOB}`, DATASET, `CATALOG#VOLUMES#${BOB}`],
      [`VOLUME#${ALICE}`, DATASET, `CATALOG#VOLUMES#${ALICE}`],
    ].sort());
  });

  it('writes a volume entry only over none, its own prewarm\'s, or the one it says it replaces', async () => {
    const dataset = 's3://datasets-bucket/conditional/';
    const first = { ...entry, datasetUri: dataset, prewarmId: 'prewarm-a' };
    await catalog.putVolume(first);
    // A retried RecordVolume of the same prewarm.
    await catalog.putVolume({ ...first, files: 3 });

    const forged = { ...first, volumeId: 'vol-forged', prewarmId: 'prewarm-b' };
    await expect(catalog.putVolume(forged)).rejects.toMatchObject({ name: 'Catalog.Conflict' });
    await expect(catalog.putVolume(forged, { replaces: 'prewarm-other' })).rejects.toMatchObject({ name: 'Catalog.Conflict' });
    expect(await catalog.getVolume(ALICE, dataset)).toMatchObject({ volumeId: 'vol-1', prewarmId: 'prewarm-a', files: 3 });

    await catalog.putVolume(forged, { replaces: 'prewarm-a' });
    expect(await catalog.getVolume(ALICE, dataset)).toMatchObject({ volumeId: 'vol-forged', prewarmId: 'prewarm-b' });
  });

  it('stores images by owner and bundle digest, and lists them by owner, newest first', async () => {
    await catalog.putImage(image());
    await catalog.putImage(image({ bundleSha: 'e'.repeat(64), buildId: 'build-2', tag: `bundle-${'e'.repeat(64)}-build-2`, createdAt: '2026-11-26T00:00:00Z' }));

    expect(await catalog.getImage(ALICE, SHA)).toEqual(image());
    expect(await catalog.getImage(BOB, SHA)).toBeUndefined();
    expect(await catalog.getImage(ALICE, 'f'.repeat(64))).toBeUndefined();
    expect((await catalog.listImages(ALICE)).items.map((i) => i.buildId)).toEqual(['build-2', 'build-1']);
    expect((await catalog.listImages(BOB)).items).toEqual([]);
  });

  it("gives a second owner's build of the same bundle its own entry, and refuses a write over another build's entry", async () => {
    const bobs = image({ owner: BOB, buildId: 'build-bob', tag: `bundle-${SHA}-build-bob`, digest: 'sha256:2', imageUri: 'r@sha256:2' });
    await catalog.putImage(bobs);

    expect(await catalog.getImage(BOB, SHA)).toEqual(bobs);
    expect(await catalog.getImage(ALICE, SHA)).toEqual(image());
    await expect(catalog.putImage(image({ buildId: 'build-3', digest: 'sha256:3' }))).rejects.toMatchObject({
      name: 'Catalog.Conflict',
      message: expect.stringContaining('Another build recorded the image of bundle'),
    });
    await catalog.putImage(image({ buildId: 'build-3', digest: 'sha256:3' }), { replaces: 'build-1' });
    expect((await catalog.getImage(ALICE, SHA))?.digest).toBe('sha256:3');
  });

  it("refuses another owner's page token", async () => {
    for (const name of ['p1', 'p2', 'p3']) await catalog.putVolume({ ...entry, datasetUri: `s3://datasets-bucket/${name}/`, prewarmId: `prewarm-${name}` });
    const first = await catalog.listVolumes(ALICE, { limit: 1 });

    expect(first.nextToken).toBeDefined();
    await expect(catalog.listVolumes(BOB, { limit: 1, nextToken: first.nextToken })).rejects.toMatchObject({ name: 'Run.Invalid' });
  });
});
