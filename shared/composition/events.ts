/**
 * Composition root of the EC2 event handlers. Each handler gets only the clients its path uses
 * (so its bundle carries no other SDK), built on its first invocation and reused after: importing
 * a handler has no side effect, and a missing variable fails that cold start loudly.
 */
import { taskHandler, type TaskHandler } from './task-handler';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { z } from 'zod';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { DynamoAttemptSignals } from '../adapters/dynamo-attempt-signals';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { Ec2Compute } from '../adapters/ec2-compute';
import { Ec2InstanceTags } from '../adapters/ec2-instance-tags';
import { SfnExecutions } from '../adapters/sfn-executions';
import { requireEnv } from '../config';
import { parseEc2Event } from '../events/ec2-events';
import { STACK_ENV } from '../ports/stack-tag';
import type { InstanceEventOutcome } from '../usecases/instance-event';
import type { InstanceStateDeps } from '../usecases/on-instance-state';
import type { RebalanceDeps } from '../usecases/on-rebalance';
import type { SpotWarningDeps } from '../usecases/on-spot-warning';

/** The runs table through the store's document client; the table name from RUNS_TABLE. */
function runsTable(env: NodeJS.ProcessEnv): { documentClient: DynamoDBDocumentClient; table: string } {
  return { documentClient: runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG)), table: requireEnv('RUNS_TABLE', env) };
}

/** Tags lookup, attempt signals, run reads and SSM commands: the spot-warning and rebalance paths. */
export function buildAwsCheckpointDeps(env: NodeJS.ProcessEnv = process.env): SpotWarningDeps & RebalanceDeps {
  const { documentClient, table } = runsTable(env);
  const ec2 = new EC2Client(AWS_CLIENT_RETRY_CONFIG);
  const stack = requireEnv(STACK_ENV, env);
  return {
    instances: new Ec2InstanceTags(ec2, stack),
    signals: new DynamoAttemptSignals(documentClient, table),
    store: new DynamoRunStore(documentClient, table),
    compute: new Ec2Compute({ ec2, ssm: new SSMClient(AWS_CLIENT_RETRY_CONFIG), stack }),
  };
}

/** Tags lookup, the run store and SendTaskFailure: the instance-state path. */
export function buildAwsInstanceStateDeps(env: NodeJS.ProcessEnv = process.env): InstanceStateDeps {
  const { documentClient, table } = runsTable(env);
  return {
    instances: new Ec2InstanceTags(new EC2Client(AWS_CLIENT_RETRY_CONFIG), requireEnv(STACK_ENV, env)),
    store: new DynamoRunStore(documentClient, table),
    executions: new SfnExecutions(new SFNClient(AWS_CLIENT_RETRY_CONFIG), requireEnv('TRAIN_RUN_STATE_MACHINE_ARN', env)),
  };
}

/** Builds `deps` on first use and keeps them for the container's life. */
export function once<T>(build: () => T): () => T {
  let built: T | undefined;
  return () => (built ??= build());
}

export const awsCheckpointDeps = /* @__PURE__ */ once(() => buildAwsCheckpointDeps());
export const awsInstanceStateDeps = /* @__PURE__ */ once(() => buildAwsInstanceStateDeps());

export type EventHandler = TaskHandler<InstanceEventOutcome>;

/**
 * An EventBridge handler: the event parsed with `schema` (a malformed event fails with
 * Event.Invalid naming each field), then one use case.
 */
export function eventHandler<S extends z.ZodType, D>(
  what: string,
  schema: S,
  deps: D | (() => D),
  useCase: (event: z.output<S>, deps: D) => Promise<InstanceEventOutcome>,
): EventHandler {
  return taskHandler((event) => parseEc2Event(schema, event, what), deps, useCase);
}

