import { GetCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import type { ExperimentView, Experiments } from '../ports/experiments';
import type { ListOptions, Page } from '../ports/run-store';
import { translateAwsError } from './aws-errors';
import { experimentKey, experimentsPartition, indexPageQuery, pageOf, RUNS_INDEX } from './runs-table';

const ExperimentItemSchema = z.object({
  name: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  runs: z.number().int().min(0).default(0),
});

function fromItem(item: Record<string, unknown>): ExperimentView {
  return ExperimentItemSchema.parse(item);
}

/**
 * Experiment items in the runs table (one per owner and name, listed through the byExperiment
 * index). The run store records a run's experiment as it creates the run.
 */
export class DynamoExperiments implements Experiments {
  constructor(
    private readonly documentClient: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /**
   * Makes sure the experiment exists and stamps it. Written before the run, and idempotent, so a
   * retried create that finds its run already there has still recorded the experiment.
   */
  async touch(owner: string, name: string, at: string): Promise<void> {
    await this.send(`record experiment ${name}`, () =>
      this.documentClient.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: experimentKey(owner, name),
          UpdateExpression:
            'SET #name = :name, #owner = :owner, #createdAt = if_not_exists(#createdAt, :at), #updatedAt = :at, #gsi4pk = :partition, #gsi4sk = :name',
          ExpressionAttributeNames: {
            '#name': 'name',
            '#owner': 'owner',
            '#createdAt': 'createdAt',
            '#updatedAt': 'updatedAt',
            '#gsi4pk': RUNS_INDEX.byExperiment.partition,
            '#gsi4sk': RUNS_INDEX.byExperiment.sort,
          },
          ExpressionAttributeValues: { ':name': name, ':owner': owner, ':at': at, ':partition': experimentsPartition(owner) },
        }),
      ),
    );
  }

  /** Counts a run that was created (once per run: the caller counts only a put that landed). */
  async countRun(owner: string, name: string): Promise<void> {
    await this.send(`count a run of experiment ${name}`, () =>
      this.documentClient.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: experimentKey(owner, name),
          UpdateExpression: 'ADD #runs :one',
          ExpressionAttributeNames: { '#runs': 'runs' },
          ExpressionAttributeValues: { ':one': 1 },
        }),
      ),
    );
  }

  async list(owner: string, options: ListOptions = {}): Promise<Page<ExperimentView>> {
    const input = indexPageQuery(this.tableName, RUNS_INDEX.byExperiment, experimentsPartition(owner), { ...options, oldestFirst: true });
    const output = await this.send('list experiments', () => this.documentClient.send(new QueryCommand(input)));
    return pageOf(output, fromItem);
  }

  async get(owner: string, name: string): Promise<ExperimentView | undefined> {
    const output = await this.send(`read experiment ${name}`, () =>
      this.documentClient.send(new GetCommand({ TableName: this.tableName, Key: experimentKey(owner, name) })),
    );
    return output.Item === undefined ? undefined : fromItem(output.Item);
  }

  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw translateAwsError(error, `DynamoDB: ${what}`);
    }
  }
}
