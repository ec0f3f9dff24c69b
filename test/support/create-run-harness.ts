import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { createHandler as createCreateRun } from '../../functions/api/create-run';
import { DynamoRunStore } from '../../shared/adapters/dynamo-run-store';
import { SfnExecutions } from '../../shared/adapters/sfn-executions';
import { apiLogger, type ApiDeps } from '../../shared/composition/api';
import { apiEvent, lambdaContext } from './api-events';
import { createRunsTable, dynamoClient, dynamoDocumentClient } from './aws-clients';
import { startDynalite, type RunningDynalite } from './dynalite';

/**
 * The real POST /runs handler over dynalite, with Step Functions mocked (StartExecution answers as
 * the service does, nothing trains): the harness of the tests that throw specs at the submit path.
 */

export const STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-train-run';
export const RUNS_BUCKET = 'runctl-runs';

export type CreateRunDeps = ApiDeps & { runsBucket: string; secretsPrefix?: string };

/** A request to POST /runs: a body (sent as JSON) or raw text, signed by `caller` (default ALICE). */
export interface CreateRunRequest {
  body?: unknown;
  rawBody?: string;
  caller?: string;
}

/**
 * Registers the describe block's hooks: dynalite and a fresh runs table named after `name` before
 * all, a reset StartExecution mock before each, dynalite closed after all. Its `deps` are there
 * from the first test on.
 */
export function useCreateRunHarness(options: { name: string; secretsPrefix?: string }) {
  let dynalite: RunningDynalite | undefined;
  let deps: CreateRunDeps | undefined;
  const sfnClient = new SFNClient({ region: 'us-east-1' });
  const sfn = mockClient(sfnClient);

  beforeAll(async () => {
    dynalite = await startDynalite();
    const table = `${options.name}-${Date.now()}`;
    await createRunsTable(dynamoClient(dynalite.endpoint), table);
    deps = {
      store: new DynamoRunStore(dynamoDocumentClient(dynalite.endpoint), table),
      executions: new SfnExecutions(sfnClient, STATE_MACHINE),
      clock: () => new Date(),
      logger: apiLogger,
      runsBucket: RUNS_BUCKET,
      ...(options.secretsPrefix === undefined ? {} : { secretsPrefix: options.secretsPrefix }),
    };
  });
  afterAll(async () => dynalite?.close());
  beforeEach(() => {
    sfn.reset();
    sfn.on(StartExecutionCommand).callsFake((input: { name?: string }) => ({
      executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:${input.name}`,
      startDate: new Date(),
    }));
  });

  const ready = (): CreateRunDeps => {
    if (deps === undefined) throw new Error('the create-run harness is used before its beforeAll ran');
    return deps;
  };
  return {
    get deps(): CreateRunDeps {
      return ready();
    },
    sfn,
    /** Calls the handler as API Gateway would; the status and body of its answer. */
    async post(request: CreateRunRequest): Promise<{ statusCode: number; body: string }> {
      const event = apiEvent({ method: 'POST', path: '/runs', routeKey: 'POST /runs', caller: request.caller, body: request.body, rawBody: request.rawBody });
      const result = await createCreateRun(ready)(event, lambdaContext());
      return { statusCode: result.statusCode ?? 0, body: result.body ?? '' };
    },
  };
}
