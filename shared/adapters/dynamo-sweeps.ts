import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConflictError, NotFoundError, RunctlError, RunInvalidError, StatusConflictError } from '../errors';
import type { ListOptions, Page } from '../ports/run-store';
import {
  SweepRecordSchema,
  TrialItemSchema,
  type Reservation,
  type SweepRecord,
  type SweepStatus,
  type Sweeps,
  type TrialItem,
} from '../ports/sweeps';
import { translateAwsError } from './aws-errors';
import { encodePageToken, indexPageQuery, KEY_PREFIX, pageOf, pageSize, RUNS_INDEX } from './runs-table';

/**
 * Sweeps in the runs table: the sweep record at `SWEEP#<id>`/`SWEEP`, each trial beside it at
 * `SWEEP#<id>`/`TRIAL#<n>`. The record is listed by owner (byOwner, `OWNER#<owner>#SWEEPS`) and
 * by status (byStatus, `SWEEP#STATUS#<status>`, which the early-stopping schedule reads).
 */

const SWEEP_SORT_KEY = 'SWEEP';
const TRIAL_PREFIX = 'TRIAL#';

function sweepKey(sweepId: string): { pk: string; sk: string } {
  return { pk: `SWEEP#${sweepId}`, sk: SWEEP_SORT_KEY };
}

function trialKey(sweepId: string, trial: number): { pk: string; sk: string } {
  return { pk: `SWEEP#${sweepId}`, sk: `${TRIAL_PREFIX}${String(trial).padStart(6, '0')}` };
}

function statusKey(status: SweepStatus): string {
  return `SWEEP#${KEY_PREFIX.status}${status}`;
}

function ownerSweepsKey(owner: string): string {
  return `${KEY_PREFIX.owner}${owner}#SWEEPS`;
}

function fromSweepItem(item: Record<string, unknown>): SweepRecord {
  const parsed = SweepRecordSchema.safeParse(item);
  if (parsed.success) return parsed.data;
  throw new RunctlError(`Stored sweep item ${String(item.pk)} is malformed: ${parsed.error.message}`);
}

function fromTrialItem(item: Record<string, unknown>): TrialItem {
  return TrialItemSchema.parse(item);
}

function isConditionFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

export class DynamoSweeps implements Sweeps {
  constructor(
    private readonly documentClient: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async create(record: SweepRecord): Promise<void> {
    const sortKey = `${record.createdAt}#${record.sweepId}`;
    try {
      await this.send(`create sweep ${record.sweepId}`, () =>
        this.documentClient.send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...record,
              ...sweepKey(record.sweepId),
              gsi1pk: ownerSweepsKey(record.owner),
              gsi1sk: sortKey,
              gsi3pk: statusKey(record.status),
              gsi3sk: sortKey,
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    } catch (error) {
      if (isConditionFailed(error)) throw new ConflictError(`Sweep ${record.sweepId} already exists`, { cause: error });
      throw error;
    }
  }

  async get(sweepId: string): Promise<SweepRecord | undefined> {
    const output = await this.send(`read sweep ${sweepId}`, () =>
      this.documentClient.send(new GetCommand({ TableName: this.tableName, Key: sweepKey(sweepId), ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : fromSweepItem(output.Item);
  }

  async listByOwner(owner: string, options: ListOptions = {}): Promise<Page<SweepRecord>> {
    const input = indexPageQuery(this.tableName, RUNS_INDEX.byOwner, ownerSweepsKey(owner), options);
    return pageOf(await this.send('list sweeps', () => this.documentClient.send(new QueryCommand(input))), fromSweepItem);
  }

  async listByStatus(status: SweepStatus, options: ListOptions = {}): Promise<Page<SweepRecord>> {
    const input = indexPageQuery(this.tableName, RUNS_INDEX.byStatus, statusKey(status), { ...options, oldestFirst: true });
    return pageOf(await this.send('list sweeps by status', () => this.documentClient.send(new QueryCommand(input))), fromSweepItem);
  }

  async transition(
    sweepId: string,
    from: readonly SweepStatus[],
    to: SweepStatus,
    patch: Partial<Pick<SweepRecord, 'statusReason' | 'executionArn' | 'costUsd' | 'best'>> = {},
  ): Promise<SweepRecord> {
    const names: Record<string, string> = { '#status': 'status', '#gsi3pk': 'gsi3pk', '#updatedAt': 'updatedAt' };
    const values: Record<string, unknown> = { ':to': to, ':gsi3pk': statusKey(to), ':now': this.clock().toISOString() };
    const sets = ['#status = :to', '#gsi3pk = :gsi3pk', '#updatedAt = :now'];
    for (const [field, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      names[`#${field}`] = field;
      values[`:${field}`] = value;
      sets.push(`#${field} = :${field}`);
    }
    const fromValues = from.map((status, i) => {
      values[`:from${i}`] = status;
      return `:from${i}`;
    });
    try {
      const output = await this.send(`move sweep ${sweepId} to ${to}`, () =>
        this.documentClient.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: sweepKey(sweepId),
            UpdateExpression: `SET ${sets.join(', ')}`,
            ConditionExpression: `#status IN (${fromValues.join(', ')})`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      if (output.Attributes === undefined) throw new RunctlError(`DynamoDB returned no sweep from moving ${sweepId}`);
      return fromSweepItem(output.Attributes);
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
      const actual = await this.get(sweepId);
      if (actual === undefined) throw new NotFoundError(`Sweep ${sweepId} not found`);
      throw new StatusConflictError(`Sweep ${sweepId} is ${actual.status}, not ${from.join(' or ')}, so it was not moved to ${to}`, {
        cause: error,
        actual: actual.status,
      });
    }
  }

  async reserveTrial(trial: Omit<TrialItem, 'state'>, budgetUsd: number | undefined): Promise<Reservation> {
    const key = trialKey(trial.sweepId, trial.trial);
    const existing = await this.send(`read trial ${trial.trial} of sweep ${trial.sweepId}`, () =>
      this.documentClient.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })),
    );
    if (existing.Item !== undefined) {
      const item = fromTrialItem(existing.Item);
      return item.state === 'SKIPPED' ? { outcome: 'skip', reason: item.reason ?? 'skipped' } : { outcome: 'launch' };
    }
    // One conditional update holds the dollars: two trials racing for the last of the budget
    // cannot both pass `committedUsd <= budget - hold`. Without a budget only the status counts.
    const values: Record<string, unknown> = { ':hold': trial.reservedUsd, ':one': 1, ':running': 'RUNNING' };
    let condition = '#status = :running';
    if (budgetUsd !== undefined) {
      values[':limit'] = budgetUsd - trial.reservedUsd;
      condition += ' AND #committedUsd <= :limit';
    }
    let skip: string | undefined;
    try {
      await this.send(`hold budget for trial ${trial.trial} of sweep ${trial.sweepId}`, () =>
        this.documentClient.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: sweepKey(trial.sweepId),
            UpdateExpression: 'SET #committedUsd = #committedUsd + :hold, #launched = #launched + :one',
            ConditionExpression: condition,
            ExpressionAttributeNames: { '#status': 'status', '#committedUsd': 'committedUsd', '#launched': 'launched' },
            ExpressionAttributeValues: values,
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
      const sweep = await this.get(trial.sweepId);
      skip =
        sweep?.status !== 'RUNNING'
          ? `the sweep is ${sweep?.status ?? 'gone'}`
          : `the budget: $${sweep.committedUsd.toFixed(2)} of $${(budgetUsd ?? 0).toFixed(2)} is spent or held, and the trial would hold $${trial.reservedUsd.toFixed(2)}`;
    }
    const item: TrialItem = { ...trial, state: skip === undefined ? 'LAUNCHED' : 'SKIPPED', ...(skip === undefined ? {} : { reason: skip, reservedUsd: 0 }) };
    await this.send(`record trial ${trial.trial} of sweep ${trial.sweepId}`, () =>
      this.documentClient.send(new PutCommand({ TableName: this.tableName, Item: { ...item, ...key } })),
    );
    if (skip !== undefined) {
      await this.send(`count a skipped trial of sweep ${trial.sweepId}`, () =>
        this.documentClient.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: sweepKey(trial.sweepId),
            UpdateExpression: 'ADD #skipped :one',
            ExpressionAttributeNames: { '#skipped': 'skipped' },
            ExpressionAttributeValues: { ':one': 1 },
          }),
        ),
      );
      return { outcome: 'skip', reason: skip };
    }
    return { outcome: 'launch' };
  }

  async recordTrial(sweepId: string, trial: number, outcome: { costUsd: number; runStatus: string; best?: number }): Promise<void> {
    let reserved: number;
    try {
      const output = await this.send(`record the end of trial ${trial} of sweep ${sweepId}`, () =>
        this.documentClient.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: trialKey(sweepId, trial),
            UpdateExpression: `SET #state = :recorded, #costUsd = :cost, #runStatus = :runStatus${outcome.best === undefined ? '' : ', #best = :best'}`,
            ConditionExpression: '#state = :launched',
            ExpressionAttributeNames: {
              '#state': 'state',
              '#costUsd': 'costUsd',
              '#runStatus': 'runStatus',
              ...(outcome.best === undefined ? {} : { '#best': 'best' }),
            },
            ExpressionAttributeValues: {
              ':recorded': 'RECORDED',
              ':launched': 'LAUNCHED',
              ':cost': outcome.costUsd,
              ':runStatus': outcome.runStatus,
              ...(outcome.best === undefined ? {} : { ':best': outcome.best }),
            },
            ReturnValues: 'ALL_OLD',
          }),
        ),
      );
      reserved = fromTrialItem(output.Attributes ?? {}).reservedUsd;
    } catch (error) {
      if (isConditionFailed(error)) return; // recorded already (a retry), or never launched
      throw error;
    }
    await this.send(`settle trial ${trial} of sweep ${sweepId}`, () =>
      this.documentClient.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: sweepKey(sweepId),
          UpdateExpression: 'SET #committedUsd = #committedUsd + :settle, #costUsd = #costUsd + :cost, #finished = #finished + :one',
          ExpressionAttributeNames: { '#committedUsd': 'committedUsd', '#costUsd': 'costUsd', '#finished': 'finished' },
          ExpressionAttributeValues: { ':settle': outcome.costUsd - reserved, ':cost': outcome.costUsd, ':one': 1 },
        }),
      ),
    );
  }

  async listTrials(sweepId: string, options: ListOptions = {}): Promise<Page<TrialItem>> {
    const partition = sweepKey(sweepId).pk;
    const output = await this.send(`list trials of sweep ${sweepId}`, () =>
      this.documentClient.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :trial)',
          ExpressionAttributeValues: { ':pk': partition, ':trial': TRIAL_PREFIX },
          Limit: pageSize(options.limit),
          ExclusiveStartKey: options.nextToken === undefined ? undefined : decodeTrialToken(options.nextToken, partition),
          ConsistentRead: true,
        }),
      ),
    );
    const items = (output.Items ?? []).map(fromTrialItem);
    return output.LastEvaluatedKey === undefined ? { items } : { items, nextToken: encodePageToken(output.LastEvaluatedKey) };
  }

  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (isConditionFailed(error)) throw error;
      throw translateAwsError(error, `DynamoDB: ${what}`);
    }
  }
}

function decodeTrialToken(token: string, partition: string): Record<string, string> {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  if (typeof decoded === 'object' && decoded !== null && 'pk' in decoded && 'sk' in decoded && decoded.pk === partition && typeof decoded.sk === 'string') {
    return { pk: partition, sk: decoded.sk };
  }
  throw new RunInvalidError('nextToken is invalid: pass the nextToken of the previous page of the same listing unchanged', [
    { path: 'nextToken', message: 'is not a token returned by this listing' },
  ]);
}
