import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoRunStore, runsDocumentClient } from '../../shared/adapters/dynamo-run-store';
import type { StepConfig } from '../../shared/usecases/step-deps';
import { runsTableDefinition } from '../../shared/adapters/runs-table';

/** SDK client configuration for a local emulator (moto_server, dynalite, s3rver). */
export function localClientConfig(endpoint: string) {
  return {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
}

/** A DynamoDB client for an emulator endpoint. */
export function dynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient(localClientConfig(endpoint));
}

/** The document client the run store expects, on an emulator endpoint. */
export function dynamoDocumentClient(endpoint: string): DynamoDBDocumentClient {
  return runsDocumentClient(dynamoClient(endpoint));
}

/** A run store over a new runs table `name` on an emulator endpoint (dynalite). */
export async function runStoreOn(endpoint: string, name: string): Promise<DynamoRunStore> {
  const client = dynamoClient(endpoint);
  await createRunsTable(client, name);
  return new DynamoRunStore(runsDocumentClient(client), name);
}

/** The train-run steps' configuration the step tests share: small loops, bucket `b`. */
export function stepConfig(table: string): StepConfig {
  return { bucket: 'b', table, region: 'us-east-1', heartbeatSeconds: 60, readinessMaxChecks: 3, capacityRetrySeconds: 60, prefetchMaxPolls: 3 };
}

/** Creates the runs table under `name` and waits until it is ACTIVE. */
export async function createRunsTable(client: DynamoDBClient, name: string): Promise<void> {
  await client.send(new CreateTableCommand(runsTableDefinition(name)));
  await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 2 }, { TableName: name });
}
