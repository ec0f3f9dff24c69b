import { randomUUID } from 'node:crypto';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { canTransition } from '../domain/run-status';
import { RunInvalidError } from '../errors';
import type { AttemptRef, AttemptSignals, SpotInterruptionMark } from '../ports/attempt-signals';
import { translateAwsError } from './aws-errors';
import { LAST_ATTEMPT_ATTRIBUTE, phaseAttribute, runKey, statusIndexKeys } from './runs-table';

// The spot-warning write is a status transition made outside RunStore.transition (which reads
// the owner first: one call too many on a two-minute path); it must stay a legal one.
if (!canTransition('TRAINING', 'CHECKPOINTING')) throw new Error('TRAINING → CHECKPOINTING must be a legal transition');

/**
 * Attribute on an attempt's entry that marks a rebalance checkpoint as asked for, so a
 * duplicate recommendation asks only once. Not part of the RunRecord (the store drops it on read).
 */
export const REBALANCE_ATTRIBUTE = 'rebalanceCheckpointAt';

/**
 * Attribute on an attempt's entry that marks the handover checkpoint as asked for: the
 * replacement launched on a rebalance recommendation is ready, and the attempt is asked to save
 * and stop once. Not part of the RunRecord either.
 */
export const HANDOVER_ATTRIBUTE = 'handoverCheckpointAt';

/** Attribute on an attempt's entry holding the stamp of the spot-warning write that marked it. */
export const SPOT_WARNING_ATTRIBUTE = 'spotWarningStamp';

/** AttemptSignals on the runs table, with the same document client as DynamoRunStore. */
export class DynamoAttemptSignals implements AttemptSignals {
  constructor(
    private readonly documentClient: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * One UpdateItem: status, both status index keys, reason and the attempt's end reason. The
   * condition on the owner keeps a wrong `runctl:owner` tag from writing a wrong index key.
   * The attempt keeps a stamp of this call: when the condition fails, one read tells the SDK's
   * retry of this very write (landed, answer lost) from a duplicate or late warning.
   */
  async markSpotInterrupted(mark: SpotInterruptionMark): Promise<boolean> {
    const stamp = randomUUID();
    const now = this.clock().toISOString();
    const entry = attemptEntry(mark.attempt);
    const index = statusIndexKeys(mark.owner, 'CHECKPOINTING');
    const what = `mark attempt ${mark.attempt} of run ${mark.runId} spot-interrupted`;
    const marked = await this.update(what, mark, {
      set: [
        '#status = :checkpointing',
        '#gsi2pk = :gsi2pk',
        '#gsi3pk = :gsi3pk',
        '#statusReason = :reason',
        `${entry}.#endReason = :spotInterrupted`,
        `${entry}.#warningStamp = :warningStamp`,
        `${entry}.#warnedAt = :warnedAt`,
        '#phase = :phase',
      ],
      condition: ['#status = :training', '#owner = :owner'],
      names: {
        // The phase history (see phaseAttribute), in the same single write.
        '#phase': phaseAttribute('CHECKPOINTING', now),
        '#status': 'status',
        '#gsi2pk': 'gsi2pk',
        '#gsi3pk': 'gsi3pk',
        '#statusReason': 'statusReason',
        '#owner': 'owner',
        '#warningStamp': SPOT_WARNING_ATTRIBUTE,
        '#warnedAt': 'warnedAt',
      },
      values: {
        ':warningStamp': stamp,
        ':warnedAt': mark.noticedAt,
        ':checkpointing': 'CHECKPOINTING',
        ':phase': 'CHECKPOINTING',
        ':training': 'TRAINING',
        ':gsi2pk': index.gsi2pk,
        ':gsi3pk': index.gsi3pk,
        ':owner': mark.owner,
        ':spotInterrupted': 'SPOT_INTERRUPTED',
        ':reason': `Spot interruption warning (${mark.action}) for ${mark.warnedInstance ?? mark.instanceId} at ${mark.noticedAt}: checkpointing attempt ${mark.attempt}`,
      },
    });
    return marked || (await this.markedBy(what, mark, stamp));
  }

  /** Whether the run is CHECKPOINTING with attempt `mark.attempt` marked with `stamp`. */
  private async markedBy(what: string, mark: SpotInterruptionMark, stamp: string): Promise<boolean> {
    const entry = attemptEntry(mark.attempt);
    try {
      const output = await this.documentClient.send(
        new GetCommand({
          TableName: this.tableName,
          Key: runKey(mark.runId),
          ProjectionExpression: `#status, ${entry}.#warningStamp`,
          ExpressionAttributeNames: { '#status': 'status', '#attempts': 'attempts', '#warningStamp': SPOT_WARNING_ATTRIBUTE },
          ConsistentRead: true,
        }),
      );
      const attempts: unknown = output.Item?.['attempts'];
      // A projected list element comes back as a one-element list.
      const stamped = Array.isArray(attempts) && attempts.some((a: unknown) => isStampedBy(a, stamp));
      return output.Item?.['status'] === 'CHECKPOINTING' && stamped;
    } catch (error) {
      throw translateAwsError(error, `DynamoDB: ${what} (reading it back)`);
    }
  }

  /** One UpdateItem, conditional on the spec's own flag, so the handler need not read the spec first. */
  async markRebalanceCheckpoint(ref: AttemptRef & { at: string; recommendedInstance?: string }): Promise<boolean> {
    return this.markRebalance(
      `mark a rebalance checkpoint on attempt ${ref.attempt} of run ${ref.runId}`,
      ref,
      { checkpointOnRebalance: true },
      `Rebalance recommendation for ${ref.recommendedInstance ?? ref.instanceId} at ${ref.at}: early checkpoint of attempt ${ref.attempt} requested`,
    );
  }

  /** One UpdateItem, conditional on the spec asking for a handover (preProvisionOnRebalance without checkpointOnRebalance). */
  async markRebalanceHandover(ref: AttemptRef & { at: string }): Promise<boolean> {
    return this.markRebalance(
      `mark a rebalance handover on attempt ${ref.attempt} of run ${ref.runId}`,
      ref,
      { preProvisionOnRebalance: true, checkpointOnRebalance: false },
      `Rebalance recommendation for ${ref.instanceId} at ${ref.at}: launching a replacement; attempt ${ref.attempt} trains on until it is ready`,
    );
  }

  /** Marks a TRAINING attempt as having acted on a recommendation, once, when the spec's recovery flags are as given. */
  private markRebalance(what: string, ref: AttemptRef & { at: string }, flags: Partial<Record<'checkpointOnRebalance' | 'preProvisionOnRebalance', boolean>>, reason: string): Promise<boolean> {
    const entry = attemptEntry(ref.attempt);
    const flagged = Object.entries(flags);
    return this.update(what, ref, {
      set: ['#statusReason = :reason', `${entry}.#rebalance = :at`],
      condition: ['#status = :training', ...flagged.map(([flag]) => `#spec.#recovery.#${flag} = :${flag}`), `attribute_not_exists(${entry}.#rebalance)`],
      names: {
        '#status': 'status',
        '#statusReason': 'statusReason',
        '#rebalance': REBALANCE_ATTRIBUTE,
        '#spec': 'spec',
        '#recovery': 'recovery',
        ...Object.fromEntries(flagged.map(([flag]) => [`#${flag}`, flag])),
      },
      values: { ':training': 'TRAINING', ':at': ref.at, ':reason': reason, ...Object.fromEntries(flagged.map(([flag, value]) => [`:${flag}`, value])) },
    });
  }

  async markHandoverCheckpoint(ref: AttemptRef & { at: string; replacementId: string }): Promise<boolean> {
    const entry = attemptEntry(ref.attempt);
    return this.update(`mark the handover checkpoint of attempt ${ref.attempt} of run ${ref.runId}`, ref, {
      // warnedAt: the interruption's timeline starts where training is told to stop.
      set: ['#statusReason = :reason', `${entry}.#handover = :at`, `${entry}.#warnedAt = :at`],
      condition: ['#status = :training', `attribute_not_exists(${entry}.#handover)`],
      names: { '#status': 'status', '#statusReason': 'statusReason', '#handover': HANDOVER_ATTRIBUTE, '#warnedAt': 'warnedAt' },
      values: {
        ':training': 'TRAINING',
        ':at': ref.at,
        ':reason': `Replacement ${ref.replacementId} is ready with the run's data: checkpointing attempt ${ref.attempt} to hand over to it`,
      },
    });
  }

  /**
   * Sends the update with the conditions every signal shares: attempt n is the newest (it sits at
   * index n-1, see DynamoRunStore.appendAttempt), runs on the event's instance and has not ended.
   */
  private async update(
    what: string,
    ref: AttemptRef,
    parts: { set: string[]; condition: string[]; names: Record<string, string>; values: Record<string, unknown> },
  ): Promise<boolean> {
    if (!Number.isInteger(ref.attempt) || ref.attempt < 1) {
      throw new RunInvalidError(`Attempt number must be a positive integer, got ${ref.attempt}`);
    }
    const entry = attemptEntry(ref.attempt);
    const condition = [
      '#lastAttempt = :attempt',
      `${entry}.#attempt = :attempt`,
      `${entry}.#instanceId = :instanceId`,
      `attribute_not_exists(${entry}.#endedAt)`,
      `attribute_not_exists(${entry}.#endReason)`,
      ...parts.condition,
    ];
    try {
      await this.documentClient.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: runKey(ref.runId),
          UpdateExpression: `SET ${[...parts.set, '#updatedAt = :now'].join(', ')}`,
          ConditionExpression: condition.join(' AND '),
          ExpressionAttributeNames: {
            ...parts.names,
            '#attempts': 'attempts',
            '#lastAttempt': LAST_ATTEMPT_ATTRIBUTE,
            '#attempt': 'attempt',
            '#instanceId': 'instanceId',
            '#endedAt': 'endedAt',
            '#endReason': 'endReason',
            '#updatedAt': 'updatedAt',
          },
          ExpressionAttributeValues: {
            ...parts.values,
            ':attempt': ref.attempt,
            ':instanceId': ref.instanceId,
            ':now': this.clock().toISOString(),
          },
        }),
      );
      return true;
    } catch (error) {
      // Also what a missing run gives: the condition cannot hold on an item that is not there.
      if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return false;
      throw translateAwsError(error, `DynamoDB: ${what}`);
    }
  }
}

function isStampedBy(entry: unknown, stamp: string): boolean {
  return typeof entry === 'object' && entry !== null && SPOT_WARNING_ATTRIBUTE in entry && entry[SPOT_WARNING_ATTRIBUTE] === stamp;
}

function attemptEntry(attempt: number): string {
  return `#attempts[${attempt - 1}]`;
}
