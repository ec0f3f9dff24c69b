import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { DynamoExperiments } from '../adapters/dynamo-experiments';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { requireEnv } from '../config';
import type { ExperimentDeps } from '../usecases/experiments';

let built: ExperimentDeps | undefined;

/** The experiment routes' dependencies: the runs table only, read through its byExperiment index. */
export function awsExperimentDeps(): ExperimentDeps {
  if (built === undefined) {
    const documents = runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG));
    const table = requireEnv('RUNS_TABLE');
    built = { store: new DynamoRunStore(documents, table), experiments: new DynamoExperiments(documents, table) };
  }
  return built;
}
