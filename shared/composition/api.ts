import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { SfnExecutions } from '../adapters/sfn-executions';
import { requireEnv } from '../config';
import type { Executions } from '../ports/executions';
import type { RunStore } from '../ports/run-store';

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
    store: new DynamoRunStore(runsDocumentClient(new DynamoDBClient({})), requireEnv('RUNS_TABLE')),
    executions: new SfnExecutions(new SFNClient({}), requireEnv('TRAIN_RUN_STATE_MACHINE_ARN')),
    clock: () => new Date(),
    logger: apiLogger,
  };
  return built;
}
