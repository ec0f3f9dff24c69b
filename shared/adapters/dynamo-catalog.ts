/**
 * The volume and image catalog in the runs table, keyed by owner: an owner's entries live in
 * their own partitions (`VOLUME#<owner>` / `<datasetUri>`, `IMAGE#<owner>` / `<bundleSha>`), and
 * are listed newest first through the byOwner index under `CATALOG#VOLUMES#<owner>` and
 * `CATALOG#IMAGES#<owner>` (no run's owner partition, `OWNER#…`, starts so). Every key is built
 * from the owner, so no lookup, write or listing of one owner can name another's entry.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { RunctlError } from '../errors';
import { CatalogConflictError, type Catalog, type ImageEntry, type ListOptions, type PutCondition, type VolumeEntry } from '../ports/catalog';
import type { Page } from '../ports/run-store';
import { translateAwsError } from './aws-errors';
import { indexPageQuery, pageOf, RUNS_INDEX, TABLE_KEY } from './runs-table';

export const CATALOG_PREFIX = { volume: 'VOLUME#', image: 'IMAGE#' } as const;

/** byOwner partition that lists an owner's catalogued volumes. */
export function volumesListPartition(owner: string): string {
  return `CATALOG#VOLUMES#${requireOwner(owner)}`;
}

/** byOwner partition that lists an owner's catalogued images. */
export function imagesListPartition(owner: string): string {
  return `CATALOG#IMAGES#${requireOwner(owner)}`;
}

const OwnerSchema = z.string().min(1);

const VolumeEntrySchema = z.object({
  owner: OwnerSchema,
  datasetUri: z.string().min(1),
  sizeGiB: z.number().int().positive(),
  az: z.string().min(1),
  volumeId: z.string().min(1),
  snapshotId: z.string().min(1),
  volumeType: z.string().min(1),
  bytes: z.number().min(0),
  files: z.number().int().min(0),
  createdAt: z.string(),
  prewarmId: z.string().min(1),
  claimedBy: z.string().min(1).optional(),
});

const ImageEntrySchema = z.object({
  owner: OwnerSchema,
  bundleSha: z.string().min(1),
  repository: z.string().min(1),
  imageUri: z.string().min(1),
  digest: z.string().min(1),
  tag: z.string().min(1),
  buildId: z.string().min(1),
  dockerfile: z.string().min(1),
  createdAt: z.string(),
});

function requireOwner(owner: string): string {
  if (owner === '') throw new RunctlError('A catalog entry needs its owner');
  return owner;
}

function volumeKey(owner: string, datasetUri: string) {
  return { [TABLE_KEY.partition]: `${CATALOG_PREFIX.volume}${requireOwner(owner)}`, [TABLE_KEY.sort]: datasetUri };
}

function imageKey(owner: string, bundleSha: string) {
  return { [TABLE_KEY.partition]: `${CATALOG_PREFIX.image}${requireOwner(owner)}`, [TABLE_KEY.sort]: bundleSha };
}

function parseItem<S extends z.ZodType>(schema: S, item: Record<string, unknown>): z.output<S> {
  const parsed = schema.safeParse(item);
  if (parsed.success) return parsed.data;
  throw new RunctlError(`Catalog item ${String(item[TABLE_KEY.partition])} is malformed: ${parsed.error.message}`);
}

/**
 * The condition of a catalog put: no entry yet, or the writer's own (a retried step), or the one
 * it read when it started. A prewarm or build that raced it, or a write in another's name, fails.
 */
function putCondition(idAttribute: string, self: string, condition: PutCondition) {
  const values: Record<string, string> = { ':self': self };
  let expression = `attribute_not_exists(#pk) OR #id = :self`;
  if (condition.replaces !== undefined) {
    values[':replaces'] = condition.replaces;
    expression += ' OR #id = :replaces';
  }
  return {
    ConditionExpression: expression,
    ExpressionAttributeNames: { '#pk': TABLE_KEY.partition, '#id': idAttribute },
    ExpressionAttributeValues: values,
  };
}

export class DynamoCatalog implements Catalog {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async putVolume(entry: VolumeEntry, condition: PutCondition = {}): Promise<void> {
    const index = RUNS_INDEX.byOwner;
    const item = VolumeEntrySchema.parse(entry);
    await this.conditionalPut(`the volume of ${entry.datasetUri}`, 'prewarm', condition, {
      TableName: this.table,
      Item: {
        ...item,
        ...volumeKey(item.owner, item.datasetUri),
        [index.partition]: volumesListPartition(item.owner),
        [index.sort]: `${item.createdAt}#${item.datasetUri}`,
      },
      ...putCondition('prewarmId', item.prewarmId, condition),
    });
  }

  async getVolume(owner: string, datasetUri: string): Promise<VolumeEntry | undefined> {
    const output = await this.call('GetItem volume', () =>
      this.documents.send(new GetCommand({ TableName: this.table, Key: volumeKey(owner, datasetUri), ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : parseItem(VolumeEntrySchema, output.Item);
  }

  async listVolumes(owner: string, options: ListOptions = {}): Promise<Page<VolumeEntry>> {
    const input = indexPageQuery(this.table, RUNS_INDEX.byOwner, volumesListPartition(owner), options);
    const output = await this.call('Query volumes', () => this.documents.send(new QueryCommand(input)));
    return pageOf(output, (item) => parseItem(VolumeEntrySchema, item));
  }

  async claimVolume(owner: string, datasetUri: string, volumeId: string, runId: string): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: volumeKey(owner, datasetUri),
          UpdateExpression: 'SET claimedBy = :run',
          // Re-claiming by the same run is harmless (a retried step).
          ConditionExpression: 'volumeId = :volume AND (attribute_not_exists(claimedBy) OR claimedBy = :run)',
          ExpressionAttributeValues: { ':run': runId, ':volume': volumeId },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw translateAwsError(error, 'UpdateItem claim volume');
    }
  }

  async releaseVolume(owner: string, datasetUri: string, runId: string): Promise<void> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: volumeKey(owner, datasetUri),
          UpdateExpression: 'REMOVE claimedBy',
          ConditionExpression: 'claimedBy = :run',
          ExpressionAttributeValues: { ':run': runId },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return;
      throw translateAwsError(error, 'UpdateItem release volume');
    }
  }

  async putImage(entry: ImageEntry, condition: PutCondition = {}): Promise<void> {
    const index = RUNS_INDEX.byOwner;
    const item = ImageEntrySchema.parse(entry);
    await this.conditionalPut(`the image of bundle ${entry.bundleSha}`, 'build', condition, {
      TableName: this.table,
      Item: {
        ...item,
        ...imageKey(item.owner, item.bundleSha),
        [index.partition]: imagesListPartition(item.owner),
        [index.sort]: `${item.createdAt}#${item.bundleSha}`,
      },
      ...putCondition('buildId', item.buildId, condition),
    });
  }

  async getImage(owner: string, bundleSha: string): Promise<ImageEntry | undefined> {
    const output = await this.call('GetItem image', () =>
      this.documents.send(new GetCommand({ TableName: this.table, Key: imageKey(owner, bundleSha), ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : parseItem(ImageEntrySchema, output.Item);
  }

  async listImages(owner: string, options: ListOptions = {}): Promise<Page<ImageEntry>> {
    const input = indexPageQuery(this.table, RUNS_INDEX.byOwner, imagesListPartition(owner), options);
    const output = await this.call('Query images', () => this.documents.send(new QueryCommand(input)));
    return pageOf(output, (item) => parseItem(ImageEntrySchema, item));
  }

  private async conditionalPut(
    what: string,
    writer: 'prewarm' | 'build',
    condition: PutCondition,
    input: ConstructorParameters<typeof PutCommand>[0],
  ): Promise<void> {
    try {
      await this.documents.send(new PutCommand(input));
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        const expected = condition.replaces === undefined ? 'none' : `the one of ${writer} ${condition.replaces}`;
        throw new CatalogConflictError(
          `Another ${writer} recorded ${what} while this one ran (the entry expected was ${expected}); the catalog keeps that one`,
          { cause: error },
        );
      }
      throw translateAwsError(error, `PutItem ${what}`);
    }
  }

  private call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return fn().catch((error: unknown) => {
      throw translateAwsError(error, operation);
    });
  }
}
