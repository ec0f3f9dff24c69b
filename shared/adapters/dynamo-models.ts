import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConflictError, RunctlError } from '../errors';
import { ModelSchema, ModelVersionSchema, StageChangeSchema, type Model, type ModelVersion, type Models, type StageChange } from '../ports/models';
import { translateAwsError } from './aws-errors';
import { indexPageQuery, KEY_PREFIX, pageOf, RUNS_INDEX } from './runs-table';

/**
 * The model registry in the runs table: per owner and name, a head item (`MODEL#<owner>#<name>`
 * / `HEAD`: the version counter and the stage map), one item per version (`V#000003`) and one per
 * stage move (`STAGE#<at>`), so the history of every stage is kept. An owner's models are listed
 * through byOwner (`OWNER#<owner>#MODELS`, by name).
 */

const pk = (owner: string, name: string) => `MODEL#${owner}#${name}`;
const versionSk = (version: number) => `V#${String(version).padStart(6, '0')}`;

function isConditionFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

export class DynamoModels implements Models {
  constructor(
    private readonly documentClient: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async nextVersion(owner: string, name: string, at: string): Promise<number> {
    // ADD is atomic: two registrations of one model never get the same number.
    const output = await this.send(`number a version of model ${name}`, () =>
      this.documentClient.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: pk(owner, name), sk: 'HEAD' },
          UpdateExpression:
            'ADD #latest :one SET #name = :name, #stages = if_not_exists(#stages, :empty), #createdAt = if_not_exists(#createdAt, :at), #updatedAt = :at, #gsi1pk = :owner, #gsi1sk = :name',
          ExpressionAttributeNames: {
            '#latest': 'latestVersion',
            '#name': 'name',
            '#stages': 'stages',
            '#createdAt': 'createdAt',
            '#updatedAt': 'updatedAt',
            '#gsi1pk': RUNS_INDEX.byOwner.partition,
            '#gsi1sk': RUNS_INDEX.byOwner.sort,
          },
          ExpressionAttributeValues: { ':one': 1, ':name': name, ':empty': {}, ':at': at, ':owner': `${KEY_PREFIX.owner}${owner}#MODELS` },
          ReturnValues: 'UPDATED_NEW',
        }),
      ),
    );
    const latest = output.Attributes?.latestVersion;
    if (typeof latest !== 'number') throw new RunctlError(`DynamoDB returned no version number for model ${name}`);
    return latest;
  }

  async putVersion(owner: string, version: ModelVersion): Promise<void> {
    try {
      await this.send(`record version ${version.version} of model ${version.name}`, () =>
        this.documentClient.send(
          new PutCommand({
            TableName: this.tableName,
            Item: { ...version, pk: pk(owner, version.name), sk: versionSk(version.version) },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    } catch (error) {
      if (isConditionFailed(error)) throw new ConflictError(`Version ${version.version} of model ${version.name} exists already`, { cause: error });
      throw error;
    }
  }

  async get(owner: string, name: string): Promise<Model | undefined> {
    const output = await this.send(`read model ${name}`, () =>
      this.documentClient.send(new GetCommand({ TableName: this.tableName, Key: { pk: pk(owner, name), sk: 'HEAD' }, ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : ModelSchema.parse(output.Item);
  }

  async list(owner: string, options: { limit?: number; nextToken?: string } = {}): Promise<{ items: Model[]; nextToken?: string }> {
    const input = indexPageQuery(this.tableName, RUNS_INDEX.byOwner, `${KEY_PREFIX.owner}${owner}#MODELS`, { ...options, oldestFirst: true });
    return pageOf(await this.send('list models', () => this.documentClient.send(new QueryCommand(input))), (item) => ModelSchema.parse(item));
  }

  async versions(owner: string, name: string): Promise<ModelVersion[]> {
    return (await this.queryPrefix(owner, name, 'V#')).map((item) => ModelVersionSchema.parse(item));
  }

  async version(owner: string, name: string, version: number): Promise<ModelVersion | undefined> {
    const output = await this.send(`read version ${version} of model ${name}`, () =>
      this.documentClient.send(new GetCommand({ TableName: this.tableName, Key: { pk: pk(owner, name), sk: versionSk(version) } })),
    );
    return output.Item === undefined ? undefined : ModelVersionSchema.parse(output.Item);
  }

  async promote(owner: string, name: string, change: StageChange, expected: number | undefined): Promise<void> {
    // Conditional on the stage still holding what the caller read: two promotions racing for
    // one stage cannot both win, and the stage never holds a version that does not exist.
    const condition = expected === undefined ? 'attribute_not_exists(#stages.#stage)' : '#stages.#stage = :expected';
    try {
      await this.send(`promote model ${name}`, () =>
        this.documentClient.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: pk(owner, name), sk: 'HEAD' },
            UpdateExpression: 'SET #stages.#stage = :version, #updatedAt = :at',
            ConditionExpression: `#latest >= :version AND ${condition}`,
            ExpressionAttributeNames: { '#stages': 'stages', '#stage': change.stage, '#updatedAt': 'updatedAt', '#latest': 'latestVersion' },
            ExpressionAttributeValues: { ':version': change.version, ':at': change.at, ...(expected === undefined ? {} : { ':expected': expected }) },
          }),
        ),
      );
    } catch (error) {
      if (isConditionFailed(error)) {
        throw new ConflictError(`Stage ${change.stage} of model ${name} changed meanwhile; read it again and retry`, { cause: error });
      }
      throw error;
    }
    await this.send(`record the promotion of model ${name}`, () =>
      this.documentClient.send(
        new PutCommand({ TableName: this.tableName, Item: { ...change, pk: pk(owner, name), sk: `STAGE#${change.at}#${change.stage}` } }),
      ),
    );
  }

  async history(owner: string, name: string): Promise<StageChange[]> {
    return (await this.queryPrefix(owner, name, 'STAGE#')).map((item) => StageChangeSchema.parse(item));
  }

  private async queryPrefix(owner: string, name: string, prefix: string): Promise<Array<Record<string, unknown>>> {
    const items: Array<Record<string, unknown>> = [];
    let start: Record<string, unknown> | undefined;
    do {
      const output = await this.send(`list ${prefix} of model ${name}`, () =>
        this.documentClient.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
            ExpressionAttributeValues: { ':pk': pk(owner, name), ':prefix': prefix },
            ExclusiveStartKey: start,
          }),
        ),
      );
      items.push(...(output.Items ?? []));
      start = output.LastEvaluatedKey;
    } while (start !== undefined);
    return items;
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
