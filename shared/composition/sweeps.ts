import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { DynamoSweeps } from '../adapters/dynamo-sweeps';
import { Ec2Compute } from '../adapters/ec2-compute';
import { S3Artifacts } from '../adapters/s3-artifacts';
import { SfnExecutions } from '../adapters/sfn-executions';
import { requireEnv } from '../config';
import { STACK_ENV } from '../ports/stack-tag';
import type { Artifacts } from '../ports/artifacts';
import type { RunStore } from '../ports/run-store';
import type { Sweeps } from '../ports/sweeps';
import type { SweepControlDeps } from '../usecases/sweep-control';
import type { SubmitSweepDeps } from '../usecases/sweeps';

/**
 * Composition roots of the sweep functions: the steps of the sweep machine need the table only;
 * the routes that stop trials and the early-stopping schedule also reach the trials' agents (EC2,
 * SSM) and their train-run executions; POST /sweeps starts the sweep machine.
 */

export interface SweepStepDeps {
  sweeps: Sweeps;
  store: RunStore;
  clock: () => Date;
}

let documents: DynamoDBDocumentClient | undefined;
function tableDeps(): SweepStepDeps {
  documents ??= runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG));
  const table = requireEnv('RUNS_TABLE');
  return { sweeps: new DynamoSweeps(documents, table), store: new DynamoRunStore(documents, table), clock: () => new Date() };
}

let steps: SweepStepDeps | undefined;
/** StartSweep, PrepareTrial, RecordTrial, FinishSweep, GET /sweeps/{id}. */
export function awsSweepStepDeps(): SweepStepDeps {
  steps ??= tableDeps();
  return steps;
}

let control: (SweepControlDeps & { artifacts: Artifacts }) | undefined;
/** POST /sweeps/{id}/stop and the early-stopping schedule. */
export function awsSweepControlDeps(): SweepControlDeps & { artifacts: Artifacts } {
  control ??= {
    ...tableDeps(),
    executions: new SfnExecutions(new SFNClient(AWS_CLIENT_RETRY_CONFIG), requireEnv('TRAIN_RUN_STATE_MACHINE_ARN')),
    compute: new Ec2Compute({
      ec2: new EC2Client(AWS_CLIENT_RETRY_CONFIG),
      ssm: new SSMClient(AWS_CLIENT_RETRY_CONFIG),
      stack: requireEnv(STACK_ENV),
    }),
    artifacts: new S3Artifacts(new S3Client(AWS_CLIENT_RETRY_CONFIG), requireEnv('RUNS_BUCKET')),
  };
  return control;
}

let submit: SubmitSweepDeps | undefined;
/** POST /sweeps. */
export function awsSubmitSweepDeps(): SubmitSweepDeps {
  submit ??= {
    sweeps: tableDeps().sweeps,
    sweepExecutions: new SfnExecutions(new SFNClient(AWS_CLIENT_RETRY_CONFIG), requireEnv('SWEEP_STATE_MACHINE_ARN')),
    clock: () => new Date(),
    secretsPrefix: requireEnv('SECRETS_PREFIX'),
  };
  return submit;
}
