import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { Ec2Compute } from '../adapters/ec2-compute';
import { SfnExecutions } from '../adapters/sfn-executions';
import { requireEnv } from '../config';
import type { Compute } from '../ports/compute';
import type { Executions } from '../ports/executions';
import type { RunStore } from '../ports/run-store';

/** What the API handlers need. */
export interface ApiDeps {
  store: RunStore;
  executions: Executions;
  /** Reaches a live attempt's agent (cancel). */
  compute: Compute;
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
    compute: new Ec2Compute({ ec2: new EC2Client(AWS_CLIENT_RETRY_CONFIG), ssm: new SSMClient(AWS_CLIENT_RETRY_CONFIG) }),
    clock: () => new Date(),
    logger: apiLogger,
  };
  return built;
}
