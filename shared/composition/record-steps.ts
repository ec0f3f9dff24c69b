import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { DynamoCatalog } from '../adapters/dynamo-catalog';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { S3Artifacts } from '../adapters/s3-artifacts';
import { requireEnv } from '../config';
import { DEFAULT_STEP_TUNING, type RecordStepDeps, type StepDeps } from '../usecases/step-deps';

/**
 * Composition root of the train-run steps that never touch an instance (ValidateRun,
 * FinalizeArtifacts, DecideRecovery, FinishRun): the run store and the S3 artifacts only, so
 * their bundles carry no EC2 or SSM client (docs/performance.md).
 */
export function buildAwsRecordStepDeps(
  env: NodeJS.ProcessEnv = process.env,
  documents: DynamoDBDocumentClient = runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG)),
): RecordStepDeps {
  const region = requireEnv('AWS_REGION', env);
  const table = requireEnv('RUNS_TABLE', env);
  const bucket = requireEnv('RUNS_BUCKET', env);
  const secretsPrefix = requireEnv('SECRETS_PREFIX', env);
  return {
    store: new DynamoRunStore(documents, table),
    artifacts: new S3Artifacts(new S3Client(AWS_CLIENT_RETRY_CONFIG), bucket),
    clock: () => new Date(),
    config: { bucket, table, region, secretsPrefix, ...DEFAULT_STEP_TUNING },
  };
}

let built: RecordStepDeps | undefined;

/** Built on the first invocation and kept for the container's life. */
export function awsRecordStepDeps(): RecordStepDeps {
  built ??= buildAwsRecordStepDeps();
  return built;
}

let builtWithCatalog: RecordStepDeps & Pick<StepDeps, 'catalog'> | undefined;

/** The same plus the image and volume catalog (EnsureImage), still without EC2 or SSM. */
export function awsCatalogStepDeps(): RecordStepDeps & Pick<StepDeps, 'catalog'> {
  if (builtWithCatalog === undefined) {
    const documents = runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG));
    const core = buildAwsRecordStepDeps(process.env, documents);
    builtWithCatalog = { ...core, catalog: new DynamoCatalog(documents, core.config.table) };
  }
  return builtWithCatalog;
}
