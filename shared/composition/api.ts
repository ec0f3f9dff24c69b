import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { SfnExecutions } from '../adapters/sfn-executions';
import { requireEnv } from '../config';
import type { Executions } from '../ports/executions';
import type { RunStore } from '../ports/run-store';
import type { RunsBucketDeps } from '../usecases/run-artifacts';

/** What the API handlers need. */
export interface ApiDeps {
  store: RunStore;
  executions: Executions;
  clock: () => Date;
  logger: Logger;
}

/** The API's logger; Powertools reads POWERTOOLS_SERVICE_NAME and LOG_LEVEL itself. */
export const apiLogger = new Logger({ serviceName: 'runctl-api' });

let built: ApiDeps | undefined;

/**
 * The real AWS dependencies, built once per container (clients reuse their connections across
 * invocations). Configuration is read on first use so a missing variable fails that cold start.
 */
export function awsApiDeps(): ApiDeps {
  built ??= {
    store: new DynamoRunStore(runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG)), requireEnv('RUNS_TABLE')),
    executions: new SfnExecutions(new SFNClient(AWS_CLIENT_RETRY_CONFIG), requireEnv('TRAIN_RUN_STATE_MACHINE_ARN')),
    clock: () => new Date(),
    logger: apiLogger,
  };
  return built;
}

let builtBucket: (RunsBucketDeps & { secretsPrefix: string }) | undefined;

/** The API dependencies plus the runs bucket (RUNS_BUCKET) and the secrets prefix (SECRETS_PREFIX), for the submit, artifact and upload routes. */
export function awsBucketApiDeps(): ApiDeps & RunsBucketDeps & { secretsPrefix: string } {
  builtBucket ??= { s3: new S3Client(AWS_CLIENT_RETRY_CONFIG), runsBucket: requireEnv('RUNS_BUCKET'), secretsPrefix: requireEnv('SECRETS_PREFIX') };
  return { ...awsApiDeps(), ...builtBucket };
}

/** What `GET /me` needs: the secrets prefix (SECRETS_PREFIX) alone; it calls no AWS service. */
export function awsWhoAmIDeps(): { secretsPrefix: string } {
  return { secretsPrefix: requireEnv('SECRETS_PREFIX') };
}
