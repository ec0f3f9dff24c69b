/**
 * The volume and image catalog in the runs table. Items live under their own prefixes
 * (`VOLUME#<datasetUri>`, `IMAGE#<bundleSha>`) and the volumes are listed through the byOwner
 * index under the fixed partition `CATALOG#VOLUMES` (no owner partition starts with it).
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { RunctlError } from '../errors';
import type { Catalog, ImageEntry, VolumeEntry } from '../ports/catalog';
import type { Page } from '../ports/run-store';
import { translateAwsError } from './aws-errors';
import { indexPageQuery, pageOf, RUNS_INDEX, TABLE_KEY } from './runs-table';

export const CATALOG_PREFIX = { volume: 'VOLUME#', image: 'IMAGE#' } as const;
const VOLUME_SORT_KEY = 'VOLUME';
const IMAGE_SORT_KEY = 'IMAGE';
/** byOwner partition that lists every catalogued volume. */
export const VOLUMES_LIST_PARTITION = 'CATALOG#VOLUMES';

const VolumeEntrySchema = z.object({
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
  bundleSha: z.string().min(1),
  repository: z.string().min(1),
  imageUri: z.string().min(1),
  digest: z.string().min(1),
  dockerfile: z.string().min(1),
  createdAt: z.string(),
});

function volumeKey(datasetUri: string) {
  return { [TABLE_KEY.partition]: `${CATALOG_PREFIX.volume}${datasetUri}`, [TABLE_KEY.sort]: VOLUME_SORT_KEY };
}

function imageKey(bundleSha: string) {
  return { [TABLE_KEY.partition]: `${CATALOG_PREFIX.image}${bundleSha}`, [TABLE_KEY.sort]: IMAGE_SORT_KEY };
}

function parseItem<S extends z.ZodType>(schema: S, item: Record<string, unknown>): z.output<S> {
  const parsed = schema.safeParse(item);
  if (parsed.success) return parsed.data;
  throw new RunctlError(`Catalog item ${String(item[TABLE_KEY.partition])} is malformed: ${parsed.error.message}`);
}

export class DynamoCatalog implements Catalog {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async putVolume(entry: VolumeEntry): Promise<void> {
    const index = RUNS_INDEX.byOwner;
    await this.call('PutItem volume', () =>
      this.documents.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...VolumeEntrySchema.parse(entry),
            ...volumeKey(entry.datasetUri),
            [index.partition]: VOLUMES_LIST_PARTITION,
            [index.sort]: `${entry.createdAt}#${entry.datasetUri}`,
          },
        }),
      ),
    );
  }

  async getVolume(datasetUri: string): Promise<VolumeEntry | undefined> {
    const output = await this.call('GetItem volume', () =>
      this.documents.send(new GetCommand({ TableName: this.table, Key: volumeKey(datasetUri), ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : parseItem(VolumeEntrySchema, output.Item);
  }

  async listVolumes(options: { limit?: number; nextToken?: string } = {}): Promise<Page<VolumeEntry>> {
    const input = indexPageQuery(this.table, RUNS_INDEX.byOwner, VOLUMES_LIST_PARTITION, options);
    const output = await this.call('Query volumes', () => this.documents.send(new QueryCommand(input)));
    return pageOf(output, (item) => parseItem(VolumeEntrySchema, item));
  }

  async claimVolume(datasetUri: string, volumeId: string, runId: string): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: volumeKey(datasetUri),
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

  async releaseVolume(datasetUri: string, runId: string): Promise<void> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: volumeKey(datasetUri),
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

  async putImage(entry: ImageEntry): Promise<void> {
    await this.call('PutItem image', () =>
      this.documents.send(new PutCommand({ TableName: this.table, Item: { ...ImageEntrySchema.parse(entry), ...imageKey(entry.bundleSha) } })),
    );
  }

  async getImage(bundleSha: string): Promise<ImageEntry | undefined> {
    const output = await this.call('GetItem image', () =>
      this.documents.send(new GetCommand({ TableName: this.table, Key: imageKey(bundleSha), ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : parseItem(ImageEntrySchema, output.Item);
  }

  private call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return fn().catch((error: unknown) => {
      throw translateAwsError(error, operation);
    });
  }
}
