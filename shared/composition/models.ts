import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { DynamoModels } from '../adapters/dynamo-models';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { S3ModelBlobs } from '../adapters/s3-model-blobs';
import { requireEnv } from '../config';
import type { ModelDeps } from '../usecases/models';

let built: ModelDeps | undefined;

/** The model routes: the runs table (runs, registry items) and the runs bucket (outputs, blobs). */
export function awsModelDeps(): ModelDeps {
  if (built === undefined) {
    const documents = runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG));
    const table = requireEnv('RUNS_TABLE');
    built = {
      store: new DynamoRunStore(documents, table),
      models: new DynamoModels(documents, table),
      blobs: new S3ModelBlobs(new S3Client(AWS_CLIENT_RETRY_CONFIG), requireEnv('RUNS_BUCKET')),
      clock: () => new Date(),
    };
  }
  return built;
}
