import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { DynamoScheduleStore } from '../adapters/dynamo-schedules';
import { Ec2Compute } from '../adapters/ec2-compute';
import { Ec2NodeNetworks } from '../adapters/ec2-node-networks';
import { Ec2Pricing, Ec2StorageInventory } from '../adapters/ec2-pricing';
import { EventBridgeScheduler } from '../adapters/eventbridge-schedules';
import { SfnExecutions } from '../adapters/sfn-executions';
import { optionalEnv, requireEnv } from '../config';
import type { NodeNetworks } from '../ports/compute';
import { STACK_ENV } from '../ports/stack-tag';
import type { ReconcileDeps } from '../usecases/reconcile';
import type { ScheduleApiDeps, StartScheduledRunDeps } from '../usecases/schedules';

/**
 * Composition roots of the reconciler and of user schedules (the schedule API routes reuse the
 * API's dependencies and add the schedule store and EventBridge Scheduler).
 */

export const reconcileLogger = new Logger({ serviceName: 'runctl-reconcile' });

/** Counts the requests of the SDK clients it is added to: the reconciler reports its AWS calls per pass. */
export class RequestCounter {
  count = 0;
  /** An `initialize`-step middleware: one count per logical call (the SDK's own retries are not counted). */
  readonly middleware = <A, R>(next: (args: A) => Promise<R>) => async (args: A): Promise<R> => {
    this.count += 1;
    return next(args);
  };
  readonly options = { step: 'initialize', name: 'runctlRequestCounter' } as const;
}

/**
 * Builds the reconciler's AWS dependencies from the environment. `networks` lists and deletes
 * the node networks of multi-node runs that ended (the reconciler's deps type takes it once the
 * reconciler does; the role's permissions are in place).
 */
export function buildReconcileDeps(env: NodeJS.ProcessEnv = process.env): ReconcileDeps & { networks: NodeNetworks } {
  const counter = new RequestCounter();
  const dynamo = new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG);
  const ec2 = new EC2Client(AWS_CLIENT_RETRY_CONFIG);
  const ssm = new SSMClient(AWS_CLIENT_RETRY_CONFIG);
  const sfn = new SFNClient(AWS_CLIENT_RETRY_CONFIG);
  dynamo.middlewareStack.add(counter.middleware, counter.options);
  ec2.middlewareStack.add(counter.middleware, counter.options);
  ssm.middlewareStack.add(counter.middleware, counter.options);
  sfn.middlewareStack.add(counter.middleware, counter.options);
  // The reconciler lists only this stack's instances and storage: another stage's are never its orphans.
  const stack = requireEnv(STACK_ENV, env);
  return {
    store: new DynamoRunStore(runsDocumentClient(dynamo), requireEnv('RUNS_TABLE', env)),
    compute: new Ec2Compute({ ec2, ssm, stack }),
    networks: new Ec2NodeNetworks({ ec2, stack }),
    executions: new SfnExecutions(sfn, requireEnv('TRAIN_RUN_STATE_MACHINE_ARN', env)),
    pricing: new Ec2Pricing(ec2, requireEnv('AWS_REGION', env)),
    storage: new Ec2StorageInventory(ec2, { stack }),
    clock: () => new Date(),
    logger: reconcileLogger,
    awsRequests: () => counter.count,
  };
}

let reconcileDeps: ReconcileDeps | undefined;

/** The reconciler's dependencies, built once per container on first use. */
export function awsReconcileDeps(): ReconcileDeps {
  reconcileDeps ??= buildReconcileDeps();
  return reconcileDeps;
}

/** Where the EventBridge schedules live and what they invoke. */
function schedulerFrom(env: NodeJS.ProcessEnv): EventBridgeScheduler {
  return new EventBridgeScheduler(new SchedulerClient(AWS_CLIENT_RETRY_CONFIG), {
    groupName: optionalEnv('SCHEDULE_GROUP', env) ?? 'default',
    targetArn: requireEnv('START_SCHEDULED_RUN_ARN', env),
    roleArn: requireEnv('SCHEDULER_ROLE_ARN', env),
    namePrefix: optionalEnv('SCHEDULE_NAME_PREFIX', env) ?? 'runctl-',
  });
}

let scheduleApiDeps: ScheduleApiDeps | undefined;

/** The schedule routes' dependencies, built once per container on first use. */
export function awsScheduleApiDeps(env: NodeJS.ProcessEnv = process.env): ScheduleApiDeps {
  scheduleApiDeps ??= {
    schedules: new DynamoScheduleStore(runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG)), requireEnv('RUNS_TABLE', env)),
    scheduler: schedulerFrom(env),
    clock: () => new Date(),
    secretsPrefix: requireEnv('SECRETS_PREFIX', env),
  };
  return scheduleApiDeps;
}

let startDeps: StartScheduledRunDeps | undefined;

/** start-scheduled-run's dependencies: the schedule store, and the run store and executions of submitRun. */
export function awsStartScheduledRunDeps(env: NodeJS.ProcessEnv = process.env): StartScheduledRunDeps {
  if (startDeps === undefined) {
    const documentClient = runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG));
    const table = requireEnv('RUNS_TABLE', env);
    startDeps = {
      schedules: new DynamoScheduleStore(documentClient, table),
      store: new DynamoRunStore(documentClient, table),
      executions: new SfnExecutions(new SFNClient(AWS_CLIENT_RETRY_CONFIG), requireEnv('TRAIN_RUN_STATE_MACHINE_ARN', env)),
      clock: () => new Date(),
      runsBucket: requireEnv('RUNS_BUCKET', env),
      secretsPrefix: requireEnv('SECRETS_PREFIX', env),
    };
  }
  return startDeps;
}

