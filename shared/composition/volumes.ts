/**
 * Composition root of the volume and image functions (the prewarm-volume and build-image step
 * handlers, the run-volume steps, and POST/GET /volumes, POST /images). Clients are built once
 * per container, on first use, so importing a handler has no side effect.
 */
import { stepHandler } from './task-handler';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECRClient } from '@aws-sdk/client-ecr';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { DynamoCatalog } from '../adapters/dynamo-catalog';
import { DynamoRunStore, runsDocumentClient } from '../adapters/dynamo-run-store';
import { Ec2Compute } from '../adapters/ec2-compute';
import { Ec2Volumes } from '../adapters/ec2-volumes';
import { EcrImages } from '../adapters/ecr-images';
import { SfnExecutions } from '../adapters/sfn-executions';
import { optionalEnv, requireEnv } from '../config';
import type { Catalog } from '../ports/catalog';
import type { Compute } from '../ports/compute';
import type { Executions } from '../ports/executions';
import type { ImageRegistry } from '../ports/images';
import type { RunStore } from '../ports/run-store';
import { STACK_ENV } from '../ports/stack-tag';
import type { Volumes } from '../ports/volumes';

/** Settings of the prewarm, build and run-volume steps. */
export interface VolumeConfig {
  region: string;
  /** The runs bucket: the builder fetches only content-addressed bundles (`bundles/<sha256>.tar.gz`) from it. */
  runsBucket: string;
  /** Instance type of the prewarm helper and the image builder (CPU: no GPU is needed to copy or build). */
  helperInstanceType: string;
  builderInstanceType: string;
  /** Instance profiles: the helper reads datasets from S3; the builder reads bundles and pushes to ECR. */
  helperInstanceProfile?: string;
  builderInstanceProfile?: string;
  /** Root volume of the builder: base images and layers of ML frameworks are large. */
  builderRootGiB: number;
  /** ECR repositories are created under this prefix (the instance roles may pull `runctl/*`). */
  repositoryPrefix: string;
  /** Images each repository keeps (ECR lifecycle policy). */
  keepLastImages: number;
  /** `--build-arg`s every build gets unless its request sets them (the local backend's BASE_IMAGE). */
  defaultBuildArgs?: Readonly<Record<string, string>>;
  /** Poll budgets of the machines' Wait loops (15 s, 30 s, 30 s, 60 s apart; the fill and snapshot pauses grow to span a day). */
  helperMaxChecks: number;
  fillMaxPolls: number;
  buildMaxPolls: number;
  snapshotMaxPolls: number;
  /** Seconds a handler waits on an EC2 waiter (volume available, attached) inside one invocation. */
  waiterSeconds: number;
}

export const DEFAULT_VOLUME_TUNING = {
  helperInstanceType: 'c6i.large',
  builderInstanceType: 'c6i.xlarge',
  builderRootGiB: 100,
  repositoryPrefix: 'runctl/',
  keepLastImages: 20,
  helperMaxChecks: 40,
  // Polls spanning 24 h (30 s apart at first, growing): the fill command's own SSM timeout ends
  // it first. With the snapshot's and the helper's polls, one prewarm execution stays far below
  // its 25,000-event history (test/infra/history-budget.test.ts).
  fillMaxPolls: 720,
  buildMaxPolls: 240,
  // A first snapshot of a large volume can take hours: polls spanning 24 h, a minute apart at first.
  snapshotMaxPolls: 720,
  waiterSeconds: 240,
} as const;

/** The ports the volume and image step use cases take. */
export interface VolumeDeps {
  volumes: Volumes;
  /** Launches the helper and builder instances and sends them SSM commands. */
  compute: Compute;
  catalog: Catalog;
  registry: ImageRegistry;
  /** Run records, for the run-volume steps. */
  store: RunStore;
  clock: () => Date;
  config: VolumeConfig;
}

/** What the volume and image API routes need. */
export interface VolumeApiDeps {
  catalog: Catalog;
  /** Executions of prewarm-volume and build-image. */
  prewarms: Executions;
  builds: Executions;
  clock: () => Date;
  /** POST /images builds only bundles uploaded to this bucket's `bundles/`. */
  runsBucket: string;
}

/** Amazon Linux 2023: the AWS CLI, ext4 tools and dnf-installable Docker, and a small root volume. */
export const HELPER_AMI_PARAMETER = '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64';

function profileName(value: string | undefined): string | undefined {
  return value?.startsWith('arn:') ? value.split('/').at(-1) : value;
}

/** Builds the real AWS dependencies of the volume and image steps from the environment. */
export function buildAwsVolumeDeps(env: NodeJS.ProcessEnv = process.env): VolumeDeps {
  const ec2 = new EC2Client(AWS_CLIENT_RETRY_CONFIG);
  const table = requireEnv('RUNS_TABLE', env);
  const documents = runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG));
  const securityGroup = optionalEnv('HELPER_SECURITY_GROUP_ID', env);
  const stack = requireEnv(STACK_ENV, env);
  return {
    volumes: new Ec2Volumes({ ec2, stack }),
    compute: new Ec2Compute({
      ec2,
      ssm: new SSMClient(AWS_CLIENT_RETRY_CONFIG),
      stack,
      amiParameter: optionalEnv('HELPER_AMI_PARAMETER', env) ?? HELPER_AMI_PARAMETER,
      defaultSubnets: (optionalEnv('HELPER_SUBNET_IDS', env) ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''),
      securityGroupIds: securityGroup === undefined ? undefined : [securityGroup],
    }),
    catalog: new DynamoCatalog(documents, table),
    registry: new EcrImages(new ECRClient(AWS_CLIENT_RETRY_CONFIG)),
    store: new DynamoRunStore(documents, table),
    clock: () => new Date(),
    config: {
      ...DEFAULT_VOLUME_TUNING,
      region: requireEnv('AWS_REGION', env),
      runsBucket: requireEnv('RUNS_BUCKET', env),
      helperInstanceProfile: profileName(optionalEnv('HELPER_INSTANCE_PROFILE', env)),
      builderInstanceProfile: profileName(optionalEnv('BUILDER_INSTANCE_PROFILE', env)),
    },
  };
}

let builtSteps: VolumeDeps | undefined;

/** The real step dependencies, built once per container. */
export function awsVolumeDeps(): VolumeDeps {
  builtSteps ??= buildAwsVolumeDeps();
  return builtSteps;
}

let builtApi: VolumeApiDeps | undefined;

/** The real API dependencies, built once per container. */
export function awsVolumeApiDeps(): VolumeApiDeps {
  if (builtApi === undefined) {
    const sfn = new SFNClient(AWS_CLIENT_RETRY_CONFIG);
    builtApi = {
      catalog: new DynamoCatalog(runsDocumentClient(new DynamoDBClient(AWS_CLIENT_RETRY_CONFIG)), requireEnv('RUNS_TABLE')),
      prewarms: new SfnExecutions(sfn, requireEnv('PREWARM_VOLUME_STATE_MACHINE_ARN')),
      builds: new SfnExecutions(sfn, requireEnv('BUILD_IMAGE_STATE_MACHINE_ARN')),
      clock: () => new Date(),
      runsBucket: requireEnv('RUNS_BUCKET'),
    };
  }
  return builtApi;
}

/** A task handler of prewarm-volume, build-image or the run-volume steps: parse, then one use case. */
export const volumeStepHandler = stepHandler;

