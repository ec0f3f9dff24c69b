import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { DynamoAttemptSignals } from '../adapters/dynamo-attempt-signals';
import { DynamoCatalog } from '../adapters/dynamo-catalog';
import { runsDocumentClient } from '../adapters/dynamo-run-store';
import { Ec2Compute } from '../adapters/ec2-compute';
import { Ec2NodeNetworks } from '../adapters/ec2-node-networks';
import { Ec2Volumes } from '../adapters/ec2-volumes';
import { SfnExecutions } from '../adapters/sfn-executions';
import { optionalEnv, requireEnv } from '../config';
import { STACK_ENV } from '../ports/stack-tag';
import type { PrepareReplacementDeps } from '../usecases/prepare-replacement';
import type { StepDeps } from '../usecases/step-deps';
import { buildAwsRecordStepDeps } from './record-steps';

export { stepHandler } from './task-handler';

/** `a,b , c` → ['a', 'b', 'c']; unset → []. */
function list(value: string | undefined): string[] {
  return (value ?? '').split(',').map((v) => v.trim()).filter((v) => v !== '');
}

/** RunInstances takes the profile by name; the stack hands over its ARN (`…:instance-profile/path/name`). */
function profileName(value: string | undefined): string | undefined {
  return value?.startsWith('arn:') ? value.split('/').at(-1) : value;
}

/** Builds the real AWS dependencies of the step handlers from the environment. */
export function buildAwsStepDeps(env: NodeJS.ProcessEnv = process.env): StepDeps {
  const securityGroup = optionalEnv('TRAINING_SECURITY_GROUP_ID', env) ?? optionalEnv('SECURITY_GROUP_ID', env);
  // One client per service: the catalog lives in the runs table, the volumes are EC2's.
  const documents = runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG));
  const ec2 = new EC2Client(AWS_CLIENT_RETRY_CONFIG);
  const core = buildAwsRecordStepDeps(env, documents);
  const stack = requireEnv(STACK_ENV, env);
  const subnets = list(optionalEnv('TRAINING_SUBNET_IDS', env) ?? optionalEnv('DEFAULT_SUBNETS', env));
  return {
    ...core,
    config: { ...core.config, controlEndpoint: requireEnv('AGENT_CONTROL_ENDPOINT', env) },
    compute: new Ec2Compute({
      ec2,
      ssm: new SSMClient(AWS_CLIENT_RETRY_CONFIG),
      stack,
      defaultSubnets: subnets,
      defaultInstanceProfile: profileName(
        optionalEnv('TRAINING_INSTANCE_PROFILE_ARN', env) ?? optionalEnv('INSTANCE_PROFILE_NAME', env),
      ),
      securityGroupIds: securityGroup === undefined ? undefined : [securityGroup],
    }),
    // A multi-node run's groups live in the VPC of the subnets its nodes launch in.
    networks: new Ec2NodeNetworks({ ec2, stack, defaultSubnets: subnets }),
    catalog: new DynamoCatalog(documents, core.config.table),
    volumes: new Ec2Volumes({ ec2, stack }),
  };
}

let built: StepDeps | undefined;

/**
 * The real AWS dependencies, built once per container (clients reuse their connections across
 * invocations). They are built on the first invocation, so importing a handler (tests, the local
 * backend) has no side effect, and a missing variable fails that cold start loudly.
 */
export function awsStepDeps(): StepDeps {
  built ??= buildAwsStepDeps();
  return built;
}

let builtPrepare: PrepareReplacementDeps | undefined;

/** The steps' dependencies plus the Step Functions callbacks that answer the run's AwaitReplacement wait (prepare-replacement). */
export function awsPrepareReplacementDeps(): PrepareReplacementDeps {
  if (builtPrepare === undefined) {
    const steps = awsStepDeps();
    builtPrepare = {
      ...steps,
      tasks: new SfnExecutions(new SFNClient(AWS_CLIENT_RETRY_CONFIG), requireEnv('TRAIN_RUN_STATE_MACHINE_ARN')),
      signals: new DynamoAttemptSignals(runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG)), steps.config.table),
    };
  }
  return builtPrepare;
}
