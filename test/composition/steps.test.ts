import {
  CreatePlacementGroupCommand,
  CreateSecurityGroupCommand,
  DescribePlacementGroupsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DynamoCatalog } from '../../shared/adapters/dynamo-catalog';
import { Ec2NodeNetworks } from '../../shared/adapters/ec2-node-networks';
import { Ec2Volumes } from '../../shared/adapters/ec2-volumes';
import { buildReconcileDeps } from '../../shared/composition/reconcile';
import { awsCatalogStepDeps, buildAwsRecordStepDeps } from '../../shared/composition/record-steps';
import { SfnExecutions } from '../../shared/adapters/sfn-executions';
import { awsPrepareReplacementDeps, awsStepDeps, buildAwsStepDeps } from '../../shared/composition/steps';
import { parseRunSpec } from '../../shared/domain/run-spec';
import { agentDockerConfig } from '../../shared/usecases/launch-training';

/** What the deployed step functions get (serverless.yml); dummy values, no client is really called. */
const ENV = {
  AWS_REGION: 'us-east-1',
  RUNS_TABLE: 'runctl-test-runs',
  RUNS_BUCKET: 'runctl-test-bucket',
  TRAINING_SUBNET_IDS: 'subnet-0aaa1111,subnet-0bbb2222',
  TRAINING_SECURITY_GROUP_ID: 'sg-0abc',
  TRAINING_INSTANCE_PROFILE_ARN: 'arn:aws:iam::123456789012:instance-profile/runctl/training',
  AGENT_CONTROL_ENDPOINT: 'https://abc123.execute-api.us-east-1.amazonaws.com',
  RUNCTL_STACK: 'runctl-test',
  SECRETS_PREFIX: '/runctl/test/secrets',
};

const SHA = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
const OWNER = 'arn:aws:iam::123456789012:user/alice';

describe('the AWS composition of the train-run steps', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('gives the steps that never touch an instance the store, artifacts and config only', () => {
    const deps = buildAwsRecordStepDeps(ENV);

    expect(Object.keys(deps).sort()).toEqual(['artifacts', 'clock', 'config', 'store']);
    expect(deps.config).toMatchObject({ table: 'runctl-test-runs', bucket: 'runctl-test-bucket', region: 'us-east-1', secretsPrefix: '/runctl/test/secrets' });
    expect(() => buildAwsRecordStepDeps({ ...ENV, RUNS_BUCKET: '' })).toThrow('Environment variable RUNS_BUCKET is required');
    expect(() => buildAwsRecordStepDeps({ ...ENV, SECRETS_PREFIX: '' })).toThrow('Environment variable SECRETS_PREFIX is required');
  });

  it('builds the image and volume catalog and the EBS volumes adapter', () => {
    const deps = buildAwsStepDeps(ENV);

    expect(deps.catalog).toBeInstanceOf(DynamoCatalog);
    expect(deps.volumes).toBeInstanceOf(Ec2Volumes);
  });

  it('refuses to start without the stack name that scopes every instance and volume it touches', () => {
    expect(() => buildAwsStepDeps({ ...ENV, RUNCTL_STACK: '' })).toThrow('Environment variable RUNCTL_STACK is required');
  });

  it('awsStepDeps (what the handlers use) has both, built once per container', () => {
    // Nothing else in this file calls awsStepDeps, so this first call builds from the environment.
    for (const [name, value] of Object.entries(ENV)) vi.stubEnv(name, value);

    const deps = awsStepDeps();

    expect(deps.catalog).toBeInstanceOf(DynamoCatalog);
    expect(deps.volumes).toBeInstanceOf(Ec2Volumes);
    expect(awsStepDeps()).toBe(deps);
  });

  it('gives prepare-replacement the steps\' ports and the Step Functions callbacks, built once per container', () => {
    for (const [name, value] of Object.entries(ENV)) vi.stubEnv(name, value);
    vi.stubEnv('TRAIN_RUN_STATE_MACHINE_ARN', 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-train-run');

    const deps = awsPrepareReplacementDeps();

    expect(deps.tasks).toBeInstanceOf(SfnExecutions);
    expect(deps.compute).toBe(awsStepDeps().compute);
    expect(awsPrepareReplacementDeps()).toBe(deps);
  });

  it('gives EnsureImage the catalog without compute, built once per container', () => {
    for (const [name, value] of Object.entries(ENV)) vi.stubEnv(name, value);

    const deps = awsCatalogStepDeps();

    expect(deps.catalog).toBeInstanceOf(DynamoCatalog);
    expect(deps).not.toHaveProperty('compute');
    expect(awsCatalogStepDeps()).toBe(deps);
  });

  it('reads the catalog from the runs table and volumes from EC2', async () => {
    const documents = mockClient(DynamoDBDocumentClient);
    const ec2 = mockClient(EC2Client);
    try {
      documents.on(GetCommand).resolves({});
      ec2.on(DescribeVolumesCommand).resolves({ Volumes: [{ VolumeId: 'vol-0abc', AvailabilityZone: 'us-east-1b', State: 'available', Size: 200 }] });
      const deps = buildAwsStepDeps(ENV);

      expect(await deps.catalog?.getVolume(OWNER, 's3://datasets-bucket/imagenet/')).toBeUndefined();
      expect(await deps.volumes?.describe('vol-0abc')).toMatchObject({ volumeId: 'vol-0abc', availabilityZone: 'us-east-1b', state: 'available' });
      expect(documents.commandCalls(GetCommand)[0]?.args[0].input).toMatchObject({ TableName: ENV.RUNS_TABLE, Key: { pk: `VOLUME#${OWNER}`, sk: 's3://datasets-bucket/imagenet/' } });
      expect(ec2.commandCalls(DescribeVolumesCommand)[0]?.args[0].input.VolumeIds).toEqual(['vol-0abc']);
    } finally {
      documents.restore();
      ec2.restore();
    }
  });

  it('lets LaunchTraining find the image built for a docker: "auto" run\'s bundle', async () => {
    const documents = mockClient(DynamoDBDocumentClient);
    try {
      const imageUri = `123456789012.dkr.ecr.us-east-1.amazonaws.com/runctl/training@sha256:${'5e'.repeat(32)}`;
      documents.on(GetCommand).resolves({
        Item: {
          owner: OWNER, bundleSha: SHA, repository: 'runctl/training', imageUri, digest: `sha256:${'5e'.repeat(32)}`,
          tag: `bundle-${SHA}-build-1`, buildId: 'build-1', dockerfile: 'Dockerfile', createdAt: '2026-11-25T12:00:00.000Z',
        },
      });
      const spec = parseRunSpec({
        name: 'resnet50',
        code: { bundle: `s3://runctl-runs/bundles/${SHA}.tar.gz`, entrypoint: 'train.py' },
        instance: { types: ['g5.xlarge'] },
        docker: 'auto',
      });

      const docker = await agentDockerConfig({ owner: OWNER, spec }, ENV.AWS_REGION, buildAwsStepDeps(ENV));

      expect(docker?.image).toBe(imageUri);
      expect(documents.commandCalls(GetCommand)[0]?.args[0].input.Key).toEqual({ pk: `IMAGE#${OWNER}`, sk: SHA });
    } finally {
      documents.restore();
    }
  });

  it("makes a multi-node run's network in the VPC of the stack's training subnets, named and tagged with the stack", async () => {
    const ec2 = mockClient(EC2Client);
    try {
      const self = { IpProtocol: 'tcp', FromPort: 0, ToPort: 65535, UserIdGroupPairs: [{ GroupId: 'sg-0run' }] };
      ec2.on(DescribeSubnetsCommand).resolves({ Subnets: [{ SubnetId: 'subnet-0aaa1111', VpcId: 'vpc-0stack' }] });
      ec2.on(CreateSecurityGroupCommand).resolves({ GroupId: 'sg-0run' });
      ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [{ GroupId: 'sg-0run', IpPermissions: [self], IpPermissionsEgress: [self] }] });
      ec2.on(CreatePlacementGroupCommand).resolves({});
      const deps = buildAwsStepDeps(ENV);

      expect(deps.networks).toBeInstanceOf(Ec2NodeNetworks);
      await expect(deps.networks?.ensure('r-1', { subnets: [], instanceType: 'g5.12xlarge' })).resolves.toEqual({ securityGroupId: 'sg-0run', placementGroup: 'runctl-test-r-1' });
      expect(ec2.commandCalls(DescribeSubnetsCommand)[0]?.args[0].input).toEqual({ SubnetIds: ['subnet-0aaa1111'] });
      expect(ec2.commandCalls(CreateSecurityGroupCommand)[0]?.args[0].input).toMatchObject({ GroupName: 'runctl-test-r-1', VpcId: 'vpc-0stack' });
    } finally {
      ec2.restore();
    }
  });
});

describe('the AWS composition of the reconciler', () => {
  it("lists this stack's run networks", async () => {
    const ec2 = mockClient(EC2Client);
    try {
      ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [{ GroupId: 'sg-1', Tags: [{ Key: 'runctl:run', Value: 'r-1' }] }] });
      ec2.on(DescribePlacementGroupsCommand).resolves({ PlacementGroups: [] });
      const deps = buildReconcileDeps({ ...ENV, TRAIN_RUN_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:runctl-test-train-run' });

      await expect(deps.networks.listRunNetworks()).resolves.toEqual(['r-1']);
      expect(ec2.commandCalls(DescribeSecurityGroupsCommand)[0]?.args[0].input.Filters).toContainEqual({ Name: 'tag:runctl:stack', Values: ['runctl-test'] });
    } finally {
      ec2.restore();
    }
  });
});
