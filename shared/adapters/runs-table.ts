import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import type { QueryCommandInput, QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { experimentOf } from '../domain/experiment';
import { RunRecordSchema, type RunRecord } from '../domain/run-record';
import { RUN_STATUSES, type RunStatus } from '../domain/run-status';
import { RunctlError, RunInvalidError } from '../errors';

/**
 * Layout of the runs table: one table, single-table design. Every item has a generic `pk`/`sk`
 * pair whose prefix says what it is (`RUN#…` for a run record; the volume, image and schedule
 * catalogs use their own prefixes), and the GSIs use generic `gsiNpk`/`gsiNsk` attributes
 * so other item types can be indexed by them later without a table migration.
 * serverless.yml declares the same table; keep the two in step.
 */

/** The table's own key attributes. */
export const TABLE_KEY = { partition: 'pk', sort: 'sk' } as const;

/** Prefixes of partition key values; each item type owns one. */
export const KEY_PREFIX = { run: 'RUN#', owner: 'OWNER#', status: 'STATUS#', experiment: 'EXP#' } as const;

/** Sort key of an experiment item under its `EXP#<owner>#<name>` partition. */
export const EXPERIMENT_SORT_KEY = 'EXPERIMENT';

/** Sort key of the run record item under its `RUN#<runId>` partition. */
export const RUN_SORT_KEY = 'RUN';

/** The global secondary indexes and their key attributes. */
export const RUNS_INDEX = {
  /** A user's runs, by creation time: `OWNER#<owner>` / `<createdAt>#<runId>`. */
  byOwner: { name: 'byOwner', partition: 'gsi1pk', sort: 'gsi1sk' },
  /** A user's runs in one status: `OWNER#<owner>#STATUS#<status>` / `<createdAt>#<runId>`. */
  byOwnerStatus: { name: 'byOwnerStatus', partition: 'gsi2pk', sort: 'gsi2sk' },
  /** Every run in one status (the reconciler): `STATUS#<status>` / `<createdAt>#<runId>`. */
  byStatus: { name: 'byStatus', partition: 'gsi3pk', sort: 'gsi3sk' },
  /**
   * Two listings in one index: a user's runs in one experiment (`OWNER#<owner>#EXP#<name>` /
   * `<createdAt>#<runId>`) and a user's experiments (`OWNER#<owner>#EXPERIMENTS` / `<name>`).
   */
  byExperiment: { name: 'byExperiment', partition: 'gsi4pk', sort: 'gsi4sk' },
} as const;

export type RunsIndexName = keyof typeof RUNS_INDEX;
export type RunsIndex = (typeof RUNS_INDEX)[RunsIndexName];

/** Attribute that mirrors the newest attempt number, so appends can be conditional on it. */
export const LAST_ATTEMPT_ATTRIBUTE = 'lastAttempt';

/**
 * The phase history: one top-level attribute per status entered, `phase@<ISO time>@<STATUS>`,
 * set in the very UpdateItem that moves the status. A plain SET of a new attribute needs no list
 * to exist first and no read, so the transition stays one conditional write.
 */
export const PHASE_ATTRIBUTE_PREFIX = 'phase@';

/** The attribute that records entering `status` at `at`. */
export function phaseAttribute(status: string, at: string): string {
  return `${PHASE_ATTRIBUTE_PREFIX}${at}@${status}`;
}

/** Primary key of a run record. */
export function runKey(runId: string): { pk: string; sk: string } {
  return { pk: `${KEY_PREFIX.run}${runId}`, sk: RUN_SORT_KEY };
}

/** Partition value of the byOwner index for an owner. */
export function ownerPartition(owner: string): string {
  return `${KEY_PREFIX.owner}${owner}`;
}

/** Partition value of the byOwnerStatus index. */
export function ownerStatusPartition(owner: string, status: RunStatus): string {
  return `${KEY_PREFIX.owner}${owner}#${KEY_PREFIX.status}${status}`;
}

/** Partition value of the byStatus index. */
export function statusPartition(status: RunStatus): string {
  return `${KEY_PREFIX.status}${status}`;
}

/** Partition value of the byExperiment index for the runs of one experiment. */
export function experimentRunsPartition(owner: string, experiment: string): string {
  return `${KEY_PREFIX.owner}${owner}#${KEY_PREFIX.experiment}${experiment}`;
}

/** Partition value of the byExperiment index for an owner's experiments. */
export function experimentsPartition(owner: string): string {
  return `${KEY_PREFIX.owner}${owner}#EXPERIMENTS`;
}

/** Primary key of an experiment item: one per owner and name. */
export function experimentKey(owner: string, name: string): { pk: string; sk: string } {
  return { pk: `${KEY_PREFIX.experiment}${owner}#${name}`, sk: EXPERIMENT_SORT_KEY };
}

/** Sort value shared by the run indexes: ISO timestamps sort as strings, the id breaks ties. */
function creationSortKey(record: Pick<RunRecord, 'createdAt' | 'runId'>): string {
  return `${record.createdAt}#${record.runId}`;
}

/** The table definition (keys, indexes, billing) for tests and the local backend. */
export function runsTableDefinition(tableName: string): CreateTableCommandInput {
  const index = (name: string, partition: string, sort: string) => ({
    IndexName: name,
    KeySchema: [
      { AttributeName: partition, KeyType: 'HASH' as const },
      { AttributeName: sort, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'ALL' as const },
  });
  const stringAttributes = [
    TABLE_KEY.partition,
    TABLE_KEY.sort,
    ...Object.values(RUNS_INDEX).flatMap((i) => [i.partition, i.sort]),
  ];
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: stringAttributes.map((name) => ({ AttributeName: name, AttributeType: 'S' })),
    KeySchema: [
      { AttributeName: TABLE_KEY.partition, KeyType: 'HASH' },
      { AttributeName: TABLE_KEY.sort, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: Object.values(RUNS_INDEX).map((i) => index(i.name, i.partition, i.sort)),
  };
}

/** The GSI key values of a run in a status (the ones a status change rewrites). */
export function statusIndexKeys(owner: string, status: RunStatus): { gsi2pk: string; gsi3pk: string } {
  return { gsi2pk: ownerStatusPartition(owner, status), gsi3pk: statusPartition(status) };
}

/** The stored item of a run record: the record plus its table and index keys. */
export function toRunItem(record: RunRecord): Record<string, unknown> {
  const sortKey = creationSortKey(record);
  return {
    ...record,
    ...runKey(record.runId),
    gsi1pk: ownerPartition(record.owner),
    gsi1sk: sortKey,
    ...statusIndexKeys(record.owner, record.status),
    gsi2sk: sortKey,
    gsi3sk: sortKey,
    gsi4pk: experimentRunsPartition(record.owner, experimentOf(record.spec)),
    gsi4sk: sortKey,
    [LAST_ATTEMPT_ATTRIBUTE]: record.attempts.reduce((newest, a) => Math.max(newest, a.attempt), 0),
  };
}


/** Reads a stored run item back into a record; a malformed item is a controller bug, not user input. */
export function fromRunItem(item: Record<string, unknown>): RunRecord {
  // Unknown attributes (the keys, `lastAttempt`) are stripped by the schema.
  const parsed = RunRecordSchema.safeParse(withPhases(item));
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new RunctlError(`Stored run item ${String(item[TABLE_KEY.partition])} is malformed: ${problems}`);
}

/** The stored phase attributes as the record's `phases`: by time, ties in lifecycle order. */
function withPhases(item: Record<string, unknown>): Record<string, unknown> {
  const phases = Object.keys(item)
    .filter((name) => name.startsWith(PHASE_ATTRIBUTE_PREFIX))
    .map((name) => {
      const [at = '', status = ''] = name.slice(PHASE_ATTRIBUTE_PREFIX.length).split('@');
      return { at, status };
    })
    .sort((a, b) => a.at.localeCompare(b.at) || lifecycleOrder(a.status) - lifecycleOrder(b.status));
  return phases.length === 0 ? item : { ...item, phases };
}

function lifecycleOrder(status: string): number {
  return (RUN_STATUSES as readonly string[]).indexOf(status);
}

// Paging through the indexes.

const DEFAULT_PAGE_SIZE = 50;
/** Bounds one API response; DynamoDB itself also ends a page at 1 MB read and says so with LastEvaluatedKey. */
const MAX_PAGE_SIZE = 100;

/** The page size a listing asks DynamoDB for. */
export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RunInvalidError(`limit must be a positive integer, got ${limit}`, [
      { path: 'limit', message: 'must be a positive integer' },
    ]);
  }
  return Math.min(limit, MAX_PAGE_SIZE);
}

const StartKeySchema = z.record(z.string(), z.string());

/** The page token is the LastEvaluatedKey, opaque to callers (base64url of its JSON). */
export function encodePageToken(lastEvaluatedKey: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(lastEvaluatedKey), 'utf8').toString('base64url');
}

/**
 * Decodes a page token, accepting only a key of this index and this partition: a token from
 * another listing would otherwise surface as a DynamoDB ValidationException.
 */
export function decodePageToken(token: string, index: RunsIndex, partition: string): Record<string, string> {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  const key = StartKeySchema.safeParse(decoded);
  const expected = [TABLE_KEY.partition, TABLE_KEY.sort, index.partition, index.sort].sort();
  const valid =
    key.success &&
    Object.keys(key.data).sort().join() === expected.join() &&
    key.data[index.partition] === partition;
  if (!valid) {
    throw new RunInvalidError('nextToken is invalid: pass the nextToken of the previous page of the same listing unchanged', [
      { path: 'nextToken', message: 'is not a token returned by this listing' },
    ]);
  }
  return key.data;
}

/**
 * One page of a partition of an index, newest first unless `oldestFirst`: the Query input, with
 * the caller's page token checked to belong to this very listing. Runs, schedules and the volume
 * catalog all list this way.
 */
export function indexPageQuery(
  tableName: string,
  index: RunsIndex,
  partition: string,
  options: { limit?: number; nextToken?: string; oldestFirst?: boolean },
): QueryCommandInput {
  return {
    TableName: tableName,
    IndexName: index.name,
    KeyConditionExpression: '#partition = :partition',
    ExpressionAttributeNames: { '#partition': index.partition },
    ExpressionAttributeValues: { ':partition': partition },
    ScanIndexForward: options.oldestFirst ?? false,
    Limit: pageSize(options.limit),
    ExclusiveStartKey: options.nextToken === undefined ? undefined : decodePageToken(options.nextToken, index, partition),
  };
}

/** The items of a Query answer, parsed, with the token of the next page when there is one. */
export function pageOf<T>(output: Pick<QueryCommandOutput, 'Items' | 'LastEvaluatedKey'>, parse: (item: Record<string, unknown>) => T): { items: T[]; nextToken?: string } {
  const items = (output.Items ?? []).map(parse);
  return output.LastEvaluatedKey === undefined ? { items } : { items, nextToken: encodePageToken(output.LastEvaluatedKey) };
}
