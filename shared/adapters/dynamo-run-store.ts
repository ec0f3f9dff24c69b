import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Attempt, NodeState, RunRecord } from '../domain/run-record';
import { canTransition, type RunStatus } from '../domain/run-status';
import {
  ConflictError,
  NotFoundError,
  RunctlError,
  RunInvalidError,
  StatusConflictError,
} from '../errors';
import type { ListOptions, Page, RunStore, TransitionPatch } from '../ports/run-store';
import { translateAwsError } from './aws-errors';
import { experimentOf } from '../domain/experiment';
import { DynamoExperiments } from './dynamo-experiments';
import {
  experimentRunsPartition,
  fromRunItem,
  indexPageQuery,
  LAST_ATTEMPT_ATTRIBUTE,
  phaseAttribute,
  ownerPartition,
  ownerStatusPartition,
  pageOf,
  RUNS_INDEX,
  type RunsIndex,
  runKey,
  statusIndexKeys,
  statusPartition,
  TABLE_KEY,
  toRunItem,
} from './runs-table';

/** Fields a transition may patch; listed so that no stray property of the patch reaches the item. */
const TRANSITION_FIELDS = [
  'statusReason',
  'executionArn',
  'latestCheckpoint',
  'costUsd',
  'cancelRequested',
  'interruptions',
  'userFailures',
  'metrics',
  'network',
] as const satisfies readonly (keyof TransitionPatch)[];

const ATTEMPT_FIELDS = [
  'instanceId',
  'instanceType',
  'availabilityZone',
  'spot',
  'pricePerHourUsd',
  'startedAt',
  'endedAt',
  'endReason',
  'resumeFrom',
  'warnedAt',
  'checkpointCompletedAt',
  'checkpointUpload',
  'replacement',
  'trainingStartedAt',
  'nodes',
] as const satisfies readonly (keyof Omit<Attempt, 'attempt'>)[];

const NODE_FIELDS = [
  'instanceId',
  'instanceType',
  'availabilityZone',
  'subnetId',
  'spot',
  'privateIp',
  'launchedForAttempt',
  'launchedAt',
  'readyAt',
  'copyCommandId',
  'dataReadyAt',
  'agentCommandId',
  'lastHeartbeatAt',
  'outcome',
  'warnedAt',
  'lostAt',
  'releasedAt',
] as const satisfies readonly (keyof Omit<NodeState, 'rank'>)[];

// Compile-time guards: a field added to the port's types must be added to the lists above.
type Missing<All, Listed> = Exclude<All, Listed> extends never ? true : never;
const transitionFieldsComplete: Missing<keyof TransitionPatch, (typeof TRANSITION_FIELDS)[number]> = true;
const attemptFieldsComplete: Missing<Exclude<keyof Attempt, 'attempt'>, (typeof ATTEMPT_FIELDS)[number]> = true;
void transitionFieldsComplete;
void attemptFieldsComplete;
const nodeFieldsComplete: Missing<Exclude<keyof NodeState, 'rank'>, (typeof NODE_FIELDS)[number]> = true;
void nodeFieldsComplete;

/**
 * Attribute stamped by each status transition with a value of its own. A write that landed but
 * whose answer was lost is sent again by the SDK's retry, and that retry fails the status
 * condition; finding this call's stamp on the item tells the two apart.
 */
export const TRANSITION_STAMP_ATTRIBUTE = 'transitionStamp';

type UpdateOutcome = { applied: true; item: Record<string, unknown> } | { applied: false; failure: unknown };

/** The document client the store expects: optional record fields are dropped, never written as null. */
export function runsDocumentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/** A SET/REMOVE update expression built clause by clause, with placeholder names and values. */
class UpdateBuilder {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private readonly sets: string[] = [];
  private readonly removes: string[] = [];

  name(attribute: string): string {
    const placeholder = `#${attribute}`;
    this.names[placeholder] = attribute;
    return placeholder;
  }

  value(key: string, value: unknown): string {
    const placeholder = `:${key}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  /** `SET path = :key`. */
  set(path: string, key: string, value: unknown): this {
    this.sets.push(`${path} = ${this.value(key, value)}`);
    return this;
  }

  /** `SET path = list_append(path, :key)`: the earlier entries stay as they are. */
  append(path: string, key: string, entries: unknown[]): this {
    this.sets.push(`${path} = list_append(${path}, ${this.value(key, entries)})`);
    return this;
  }


  remove(path: string): this {
    this.removes.push(path);
    return this;
  }

  expression(): string {
    const parts = [];
    if (this.sets.length > 0) parts.push(`SET ${this.sets.join(', ')}`);
    if (this.removes.length > 0) parts.push(`REMOVE ${this.removes.join(', ')}`);
    return parts.join(' ');
  }
}

/** RunStore on the DynamoDB runs table (see runs-table.ts for its layout). */
export class DynamoRunStore implements RunStore {
  private readonly experiments: DynamoExperiments;

  constructor(
    private readonly documentClient: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.experiments = new DynamoExperiments(documentClient, tableName);
  }

  /** Creates the record; the put is conditional so a retried ValidateRun cannot overwrite a run that moved on. */
  async create(record: RunRecord): Promise<void> {
    record.attempts.forEach((a, i) => {
      if (a.attempt !== i + 1) {
        throw new RunInvalidError(`Run ${record.runId}: attempts must be numbered 1, 2, 3… in order`);
      }
    });
    const experiment = experimentOf(record.spec);
    await this.experiments.touch(record.owner, experiment, record.createdAt);
    try {
      await this.call(`create run ${record.runId}`, () =>
        this.documentClient.send(
          new PutCommand({
            TableName: this.tableName,
            Item: toRunItem(record),
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': TABLE_KEY.partition },
          }),
        ),
      );
    } catch (error) {
      if (isConditionFailed(error)) throw new ConflictError(`Run ${record.runId} already exists`, { cause: error });
      throw error;
    }
    await this.experiments.countRun(record.owner, experiment);
  }

  /** Reads a run (strongly consistent), or undefined when there is none. */
  async get(runId: string): Promise<RunRecord | undefined> {
    const item = await this.getItem(runId);
    return item === undefined ? undefined : fromRunItem(item);
  }

  /** The stored item as it is, keys and bookkeeping attributes included. */
  private async getItem(runId: string): Promise<Record<string, unknown> | undefined> {
    const output = await this.call(`read run ${runId}`, () =>
      this.documentClient.send(new GetCommand({ TableName: this.tableName, Key: runKey(runId), ConsistentRead: true })),
    );
    return output.Item;
  }

  /** The owner's runs, newest first, optionally in one status only. */
  async listByOwner(owner: string, options: ListOptions & { status?: RunStatus } = {}): Promise<Page<RunRecord>> {
    if (options.status === undefined) {
      return this.query(RUNS_INDEX.byOwner, ownerPartition(owner), false, options);
    }
    return this.query(RUNS_INDEX.byOwnerStatus, ownerStatusPartition(owner, options.status), false, options);
  }

  /** The owner's runs in one experiment, oldest first. */
  async listByExperiment(owner: string, experiment: string, options: ListOptions = {}): Promise<Page<RunRecord>> {
    return this.query(RUNS_INDEX.byExperiment, experimentRunsPartition(owner, experiment), true, options);
  }

  /** Every run in a status, oldest first. */
  async listByStatus(status: RunStatus, options: ListOptions = {}): Promise<Page<RunRecord>> {
    return this.query(RUNS_INDEX.byStatus, statusPartition(status), true, options);
  }

  /**
   * Moves the run to `to` if it is still in one of `from`. Two writers that both read TRAINING
   * (say the agent's success callback and a spot warning) cannot both win: the condition lets
   * the first through and the second gets a StatusConflictError naming the status it lost to.
   * The status reason belongs to the status, so a transition without one clears the old one.
   * A write that landed although its answer was lost (the SDK's retry then fails the condition)
   * is recognised by its stamp and answers as the success it was.
   */
  async transition(
    runId: string,
    from: RunStatus | readonly RunStatus[],
    to: RunStatus,
    patch: TransitionPatch = {},
  ): Promise<RunRecord> {
    const expected: readonly RunStatus[] = typeof from === 'string' ? [from] : from;
    const legal = expected.filter((status) => canTransition(status, to));
    if (legal.length === 0) {
      throw new StatusConflictError(
        `Run ${runId} cannot move from ${expected.join(' or ')} to ${to}: that transition is not allowed`,
      );
    }
    // The byOwnerStatus key concatenates owner and status and an update expression cannot
    // concatenate, so the owner (which never changes) is read first.
    const owner = await this.readOwner(runId);
    const update = new UpdateBuilder();
    update.set(update.name('status'), 'to', to);
    for (const [attribute, value] of Object.entries(statusIndexKeys(owner, to))) {
      update.set(update.name(attribute), attribute, value);
    }
    for (const field of TRANSITION_FIELDS) {
      const value = patch[field];
      if (value !== undefined) update.set(update.name(field), field, value);
      else if (field === 'statusReason') update.remove(update.name(field));
    }
    const stamp = randomUUID();
    update.set(update.name(TRANSITION_STAMP_ATTRIBUTE), 'stamp', stamp);
    const fromValues = legal.map((status, i) => update.value(`from${i}`, status));
    const condition = `${update.name('status')} IN (${fromValues.join(', ')})`;

    const outcome = await this.updateRun(`move run ${runId} to ${to}`, runId, update, condition);
    if (outcome.applied) return this.recordPhase(runId, to, outcome.item);
    const item = await this.getItem(runId);
    if (item === undefined) throw new NotFoundError(`Run ${runId} does not exist`);
    if (item[TRANSITION_STAMP_ATTRIBUTE] === stamp) return fromRunItem(item);
    const actual = fromRunItem(item).status;
    throw new StatusConflictError(`Run ${runId} is ${actual}, not ${legal.join(' or ')}, so it was not moved to ${to}`, {
      cause: outcome.failure,
      actual,
    });
  }

  /**
   * Adds the status just entered to the phase history the dashboard draws (a top-level attribute
   * per phase, see phaseAttribute). A write of its own, after the transition, so the conditional
   * write that decides the transition stays as it was; a history that misses a phase when this
   * write fails shows the phase merged into the one before it, and nothing else depends on it.
   */
  private async recordPhase(runId: string, status: RunStatus, item: Record<string, unknown>): Promise<RunRecord> {
    const at = this.now();
    const name = phaseAttribute(status, at);
    try {
      await this.documentClient.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: runKey(runId),
          UpdateExpression: 'SET #phase = :status',
          ExpressionAttributeNames: { '#phase': name },
          ExpressionAttributeValues: { ':status': status },
        }),
      );
    } catch {
      return fromRunItem(item);
    }
    return fromRunItem({ ...item, [name]: status });
  }

  /**
   * Appends an attempt. Conditional on the newest stored attempt being the one before it, so a
   * retried ProvisionInstance cannot add the same attempt twice and attempt n stays at index n-1.
   */
  async appendAttempt(runId: string, attempt: Attempt): Promise<void> {
    const update = new UpdateBuilder();
    const last = update.name(LAST_ATTEMPT_ATTRIBUTE);
    update.append(update.name('attempts'), 'appended', [attempt]).set(last, 'attempt', attempt.attempt);
    const condition = `${last} = ${update.value('previous', attempt.attempt - 1)}`;

    const outcome = await this.updateRun(`append attempt ${attempt.attempt} to run ${runId}`, runId, update, condition);
    if (outcome.applied) return;
    const record = await this.getExisting(runId);
    if (record.attempts.some((a) => a.attempt === attempt.attempt)) return; // a retry: already there
    throw new ConflictError(
      `Run ${runId} has ${record.attempts.length} attempt(s); attempt ${attempt.attempt} cannot be appended`,
      { cause: outcome.failure },
    );
  }

  /**
   * Updates fields of the newest attempt. Attempt n sits at index n-1 (see appendAttempt); the
   * condition on its number and on `lastAttempt` keeps a late event from rewriting an attempt
   * that has been superseded.
   */
  async updateAttempt(runId: string, attemptNumber: number, patch: Partial<Omit<Attempt, 'attempt'>>): Promise<void> {
    if (!Number.isInteger(attemptNumber) || attemptNumber < 1) {
      throw new RunInvalidError(`Attempt number must be a positive integer, got ${attemptNumber}`);
    }
    const update = new UpdateBuilder();
    const entry = `${update.name('attempts')}[${attemptNumber - 1}]`;
    for (const field of ATTEMPT_FIELDS) {
      const value = patch[field];
      if (value !== undefined) update.set(`${entry}.${update.name(field)}`, field, value);
    }
    const number = update.value('attempt', attemptNumber);
    const condition = `${update.name(LAST_ATTEMPT_ATTRIBUTE)} = ${number} AND ${entry}.${update.name('attempt')} = ${number}`;

    const outcome = await this.updateRun(`update attempt ${attemptNumber} of run ${runId}`, runId, update, condition);
    if (outcome.applied) return;
    const record = await this.getExisting(runId);
    throw new ConflictError(
      `Run ${runId}: attempt ${attemptNumber} is not its newest attempt (it has ${record.attempts.length})`,
      { cause: outcome.failure },
    );
  }

  /** Updates node `rank` of the newest attempt: only its own fields, so nodes reporting at once never overwrite each other. */
  async updateNode(runId: string, attemptNumber: number, rank: number, patch: Partial<Omit<NodeState, 'rank'>>): Promise<void> {
    if (!Number.isInteger(attemptNumber) || attemptNumber < 1 || !Number.isInteger(rank) || rank < 0) {
      throw new RunInvalidError(`Attempt ${attemptNumber} and rank ${rank} must be a positive and a non-negative integer`);
    }
    const update = new UpdateBuilder();
    const entry = `${update.name('attempts')}[${attemptNumber - 1}].${update.name('nodes')}[${rank}]`;
    for (const field of NODE_FIELDS) {
      const value = patch[field];
      if (value !== undefined) update.set(`${entry}.${update.name(field)}`, field, value);
    }
    const number = update.value('attempt', attemptNumber);
    const condition =
      `${update.name(LAST_ATTEMPT_ATTRIBUTE)} = ${number} AND ${update.name('attempts')}[${attemptNumber - 1}].${update.name('attempt')} = ${number}` +
      ` AND ${entry}.${update.name('rank')} = ${update.value('rank', rank)}`;
    const outcome = await this.updateRun(`update node ${rank} of attempt ${attemptNumber} of run ${runId}`, runId, update, condition);
    if (outcome.applied) return;
    throw new ConflictError(`Run ${runId}: attempt ${attemptNumber} is not its newest attempt, or has no node ${rank}`, { cause: outcome.failure });
  }

  /**
   * Stores the task token of the live wait of `attempt`. Conditional on that attempt being the
   * newest, so a slow handler of a superseded attempt cannot overwrite the live token.
   */
  async setTaskToken(runId: string, attempt: number, token: string): Promise<void> {
    const update = new UpdateBuilder();
    update.set(update.name('taskToken'), 'token', token).set(update.name('taskTokenAttempt'), 'attempt', attempt);
    const condition = `${update.name(LAST_ATTEMPT_ATTRIBUTE)} = ${update.value('attempt', attempt)}`;

    const outcome = await this.updateRun(`store the task token of run ${runId}`, runId, update, condition);
    if (outcome.applied) return;
    const record = await this.getExisting(runId);
    // The token itself stays out of the message: it must never reach a log.
    throw new ConflictError(
      `Run ${runId}: attempt ${attempt} is not its newest attempt (it has ${record.attempts.length}); task token not stored`,
      { cause: outcome.failure },
    );
  }

  /**
   * Clears the task token if it is still `token`. A late clear from a finished attempt must not
   * erase the token of the attempt that replaced it, so it is conditional and returns false then.
   */
  async clearTaskToken(runId: string, token: string): Promise<boolean> {
    const update = new UpdateBuilder();
    const stored = update.name('taskToken');
    update.remove(stored).remove(update.name('taskTokenAttempt'));
    const condition = `${stored} = ${update.value('token', token)}`;

    const outcome = await this.updateRun(`clear the task token of run ${runId}`, runId, update, condition);
    return outcome.applied;
  }

  /**
   * Stores the replacement wait's token. The condition is what makes the wait safe: prepare-
   * replacement records `dataReadyAt` or `releasedAt` first and reads the token after, so either
   * this write sees that mark (and refuses: the caller does not wait) or that read sees the token.
   */
  async awaitReplacement(runId: string, warnedAttempt: number, instanceId: string, token: string): Promise<boolean> {
    if (!Number.isInteger(warnedAttempt) || warnedAttempt < 1) {
      throw new RunInvalidError(`Attempt number must be a positive integer, got ${warnedAttempt}`);
    }
    const update = new UpdateBuilder();
    update.set(update.name('replacementToken'), 'token', token);
    const replacement = `${update.name('attempts')}[${warnedAttempt - 1}].${update.name('replacement')}`;
    const condition = [
      `${update.name(LAST_ATTEMPT_ATTRIBUTE)} = ${update.value('attempt', warnedAttempt)}`,
      `${replacement}.${update.name('instanceId')} = ${update.value('instanceId', instanceId)}`,
      `attribute_not_exists(${replacement}.${update.name('dataReadyAt')})`,
      `attribute_not_exists(${replacement}.${update.name('releasedAt')})`,
    ].join(' AND ');
    const outcome = await this.updateRun(`store the replacement wait's token of run ${runId}`, runId, update, condition);
    return outcome.applied;
  }

  /** Clears the replacement wait's token if it is still `token` (conditional, so one caller ends the wait). */
  async clearReplacementToken(runId: string, token: string): Promise<boolean> {
    const update = new UpdateBuilder();
    const stored = update.name('replacementToken');
    update.remove(stored);
    const outcome = await this.updateRun(`clear the replacement wait's token of run ${runId}`, runId, update, `${stored} = ${update.value('token', token)}`);
    return outcome.applied;
  }

  /**
   * Sends a conditional UpdateItem on a run, stamping `updatedAt`. A failed condition is an
   * expected outcome that each caller interprets, so it is returned rather than thrown.
   */
  private async updateRun(what: string, runId: string, update: UpdateBuilder, condition: string): Promise<UpdateOutcome> {
    update.set(update.name('updatedAt'), 'now', this.now());
    try {
      const output = await this.call(what, () =>
        this.documentClient.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: runKey(runId),
            UpdateExpression: update.expression(),
            ConditionExpression: condition,
            ExpressionAttributeNames: update.names,
            ExpressionAttributeValues: update.values,
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      if (output.Attributes === undefined) throw new RunctlError(`DynamoDB returned no record from the request to ${what}`);
      return { applied: true, item: output.Attributes };
    } catch (error) {
      if (isConditionFailed(error)) return { applied: false, failure: error };
      throw error;
    }
  }

  private now(): string {
    return this.clock().toISOString();
  }

  private async getExisting(runId: string): Promise<RunRecord> {
    const record = await this.get(runId);
    if (record === undefined) throw new NotFoundError(`Run ${runId} does not exist`);
    return record;
  }

  private async readOwner(runId: string): Promise<string> {
    const output = await this.call(`read the owner of run ${runId}`, () =>
      this.documentClient.send(
        new GetCommand({
          TableName: this.tableName,
          Key: runKey(runId),
          ProjectionExpression: '#owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ConsistentRead: true,
        }),
      ),
    );
    const owner = output.Item?.['owner'];
    if (typeof owner !== 'string') throw new NotFoundError(`Run ${runId} does not exist`);
    return owner;
  }

  private async query(
    index: RunsIndex,
    partition: string,
    oldestFirst: boolean,
    options: ListOptions,
  ): Promise<Page<RunRecord>> {
    const input = indexPageQuery(this.tableName, index, partition, { ...options, oldestFirst });
    const output = await this.call(`list runs by ${index.name}`, () => this.documentClient.send(new QueryCommand(input)));
    return pageOf(output, fromRunItem);
  }

  /**
   * Runs one SDK call. A failed condition is rethrown for the caller to interpret; anything else
   * becomes Aws.Throttled (throttling, 5xx: the state machines retry it) or Aws.CallFailed.
   */
  private async call<T>(what: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      if (isConditionFailed(error)) throw error;
      throw translateAwsError(error, `DynamoDB: ${what}`);
    }
  }
}

function isConditionFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
