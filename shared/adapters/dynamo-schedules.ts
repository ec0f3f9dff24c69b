import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { RunSpecSchema } from '../domain/run-spec';
import { ConflictError, RunctlError } from '../errors';
import type { ListOptions, Page } from '../ports/run-store';
import type { ScheduleRecord, ScheduleStore } from '../ports/schedules';
import { translateAwsError } from './aws-errors';
import { indexPageQuery, pageOf, RUNS_INDEX, TABLE_KEY } from './runs-table';

/**
 * Schedule records in the runs table (single-table design, see runs-table.ts):
 * - item key `pk = SCHEDULE#<scheduleId>`, `sk = SCHEDULE`;
 * - the owner's schedules through the byOwner index, in their own partition
 *   `gsi1pk = SCHEDULES#<owner>`, `gsi1sk = <createdAt>#<scheduleId>`. Runs use `OWNER#<owner>`
 *   there, and the run listing reads its whole partition, so a schedule must never share it.
 */
export const SCHEDULE_KEY_PREFIX = 'SCHEDULE#';
export const SCHEDULE_SORT_KEY = 'SCHEDULE';
export const SCHEDULE_OWNER_PREFIX = 'SCHEDULES#';

const INDEX = RUNS_INDEX.byOwner;

export function scheduleKey(scheduleId: string): { pk: string; sk: string } {
  return { pk: `${SCHEDULE_KEY_PREFIX}${scheduleId}`, sk: SCHEDULE_SORT_KEY };
}

function ownerPartition(owner: string): string {
  return `${SCHEDULE_OWNER_PREFIX}${owner}`;
}

const StoredScheduleSchema = z.object({
  scheduleId: z.string().min(1),
  owner: z.string().min(1),
  name: z.string().min(1),
  expression: z.string().min(1),
  timezone: z.string().optional(),
  spec: RunSpecSchema,
  createdAt: z.string(),
  schedulerArn: z.string().optional(),
});

// Every record the store writes must be readable back: fails to compile if the two drift apart.
const writtenSchedulesAreReadable: (record: ScheduleRecord) => z.input<typeof StoredScheduleSchema> = (record) => record;
void writtenSchedulesAreReadable;

function fromItem(item: Record<string, unknown>): ScheduleRecord {
  const parsed = StoredScheduleSchema.safeParse(item);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new RunctlError(`Stored schedule item ${String(item[TABLE_KEY.partition])} is malformed: ${problems}`);
}

/** ScheduleStore on the runs table. */
export class DynamoScheduleStore implements ScheduleStore {
  constructor(
    private readonly documentClient: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async create(record: ScheduleRecord): Promise<void> {
    try {
      await this.documentClient.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...record,
            ...scheduleKey(record.scheduleId),
            [INDEX.partition]: ownerPartition(record.owner),
            [INDEX.sort]: `${record.createdAt}#${record.scheduleId}`,
          },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': TABLE_KEY.partition },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) throw new ConflictError(`Schedule ${record.scheduleId} already exists`, { cause: error });
      throw translateAwsError(error, `DynamoDB: create schedule ${record.scheduleId}`);
    }
  }

  async get(scheduleId: string): Promise<ScheduleRecord | undefined> {
    try {
      const output = await this.documentClient.send(
        new GetCommand({ TableName: this.tableName, Key: scheduleKey(scheduleId), ConsistentRead: true }),
      );
      return output.Item === undefined ? undefined : fromItem(output.Item);
    } catch (error) {
      throw translateAwsError(error, `DynamoDB: read schedule ${scheduleId}`);
    }
  }

  async setSchedulerArn(scheduleId: string, arn: string): Promise<void> {
    try {
      await this.documentClient.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: scheduleKey(scheduleId),
          UpdateExpression: 'SET #arn = :arn',
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: { '#arn': 'schedulerArn', '#pk': TABLE_KEY.partition },
          ExpressionAttributeValues: { ':arn': arn },
        }),
      );
    } catch (error) {
      // Deleted in the meantime: there is nothing left to annotate.
      if (isConditionFailed(error)) return;
      throw translateAwsError(error, `DynamoDB: update schedule ${scheduleId}`);
    }
  }

  async listByOwner(owner: string, options: ListOptions = {}): Promise<Page<ScheduleRecord>> {
    const input = indexPageQuery(this.tableName, INDEX, ownerPartition(owner), options);
    try {
      return pageOf(await this.documentClient.send(new QueryCommand(input)), fromItem);
    } catch (error) {
      throw translateAwsError(error, 'DynamoDB: list schedules');
    }
  }

  async delete(scheduleId: string): Promise<void> {
    try {
      await this.documentClient.send(new DeleteCommand({ TableName: this.tableName, Key: scheduleKey(scheduleId) }));
    } catch (error) {
      throw translateAwsError(error, `DynamoDB: delete schedule ${scheduleId}`);
    }
  }
}


function isConditionFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
