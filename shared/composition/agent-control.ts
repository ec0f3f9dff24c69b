import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SFNClient } from '@aws-sdk/client-sfn';
import { STSClient } from '@aws-sdk/client-sts';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { Ec2InstanceStates } from '../adapters/ec2-instance-states';
import { SfnExecutions } from '../adapters/sfn-executions';
import { StsRunCredentials } from '../adapters/sts-run-credentials';
import { requireEnv } from '../config';
import type { AgentControlDeps } from '../usecases/agent-control';

let built: AgentControlDeps | undefined;

/** The agent routes' AWS dependencies, built once per container. */
export function awsAgentControlDeps(): AgentControlDeps {
  built ??= {
    store: new DynamoRunStore(runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG)), requireEnv('RUNS_TABLE')),
    instances: new Ec2InstanceStates(new EC2Client(AWS_CLIENT_RETRY_CONFIG)),
    credentials: new StsRunCredentials(new STSClient(AWS_CLIENT_RETRY_CONFIG), requireEnv('RUN_ACCESS_ROLE_ARN')),
    tasks: new SfnExecutions(new SFNClient(AWS_CLIENT_RETRY_CONFIG), requireEnv('TRAIN_RUN_STATE_MACHINE_ARN')),
    config: {
      instanceRoleId: requireEnv('TRAINING_INSTANCE_ROLE_ID'),
      partition: requireEnv('RUNCTL_PARTITION'),
      region: requireEnv('AWS_REGION'),
      accountId: requireEnv('RUNCTL_ACCOUNT_ID'),
      runsBucket: requireEnv('RUNS_BUCKET'),
      secretsPrefix: requireEnv('SECRETS_PREFIX'),
    },
  };
  return built;
}
