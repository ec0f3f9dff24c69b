/**
 * The node networks adapter with a mocked EC2: the calls it sends, and what moto cannot answer
 * (placement groups, groups still held by instances that are shutting down).
 */
import {
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreatePlacementGroupCommand,
  CreateSecurityGroupCommand,
  DeletePlacementGroupCommand,
  DeleteSecurityGroupCommand,
  DescribePlacementGroupsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  EC2ServiceException,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { Ec2NodeNetworks, supportsClusterPlacement } from '../../shared/adapters/ec2-node-networks';
import { ConflictError, PrecheckFailedError } from '../../shared/errors';
import { TEST_STACK } from '../support/stack';

const ec2Mock = mockClient(EC2Client);
const NAME = `${TEST_STACK}-run-7f3a`;
const TAGS = [
  { Key: 'Name', Value: NAME },
  { Key: 'runctl:run', Value: 'run-7f3a' },
  { Key: 'runctl:stack', Value: TEST_STACK },
];
const SELF = { IpProtocol: 'tcp', FromPort: 0, ToPort: 65535, UserIdGroupPairs: [{ GroupId: 'sg-run', UserId: '123456789012' }] };
const ALL_OUT = { IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] };

function ec2Error(code: string, message = `${code}: the service said no`): EC2ServiceException {
  const error = new EC2ServiceException({ name: code, $fault: 'client', $metadata: { httpStatusCode: 400 }, message });
  return Object.assign(error, { Code: code });
}

function group(overrides: Partial<SecurityGroup> = {}): SecurityGroup {
  return { GroupId: 'sg-run', GroupName: NAME, VpcId: 'vpc-1', Tags: TAGS, IpPermissions: [], IpPermissionsEgress: [ALL_OUT], ...overrides };
}

const sleeps: number[] = [];

function networks(extra: Partial<ConstructorParameters<typeof Ec2NodeNetworks>[0]> = {}): Ec2NodeNetworks {
  return new Ec2NodeNetworks({
    ec2: new EC2Client({ region: 'us-east-1' }),
    stack: TEST_STACK,
    throttleRetry: { attempts: 3, baseMs: 1, sleep: async () => undefined },
    releaseRetry: { attempts: 4, baseMs: 2_000, sleep: async (ms) => void sleeps.push(ms) },
    ...extra,
  });
}

beforeEach(() => {
  ec2Mock.reset();
  sleeps.length = 0;
  ec2Mock.on(DescribeSubnetsCommand).resolves({ Subnets: [{ SubnetId: 'subnet-aaa', VpcId: 'vpc-1' }] });
  ec2Mock.on(CreateSecurityGroupCommand).resolves({ GroupId: 'sg-run' });
  ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [group()] });
  ec2Mock.on(AuthorizeSecurityGroupIngressCommand).resolves({ Return: true });
  ec2Mock.on(AuthorizeSecurityGroupEgressCommand).resolves({ Return: true });
  ec2Mock.on(RevokeSecurityGroupEgressCommand).resolves({ Return: true });
  ec2Mock.on(CreatePlacementGroupCommand).resolves({ PlacementGroup: { GroupName: NAME } });
  ec2Mock.on(DescribePlacementGroupsCommand).resolves({ PlacementGroups: [] });
});

describe('ensure', () => {
  it("creates the tagged group in the subnets' VPC with its self rules, and a tagged cluster placement group", async () => {
    const network = await networks().ensure('run-7f3a', { subnets: ['subnet-aaa', 'subnet-bbb'], instanceType: 'p4d.24xlarge' });

    expect(network).toEqual({ securityGroupId: 'sg-run', placementGroup: NAME });
    expect(ec2Mock.commandCalls(DescribeSubnetsCommand)[0]?.args[0].input).toEqual({ SubnetIds: ['subnet-aaa'] });
    expect(ec2Mock.commandCalls(CreateSecurityGroupCommand)[0]?.args[0].input).toMatchObject({
      GroupName: NAME,
      VpcId: 'vpc-1',
      TagSpecifications: [{ ResourceType: 'security-group', Tags: TAGS }],
    });
    const self = { IpProtocol: 'tcp', FromPort: 0, ToPort: 65535, UserIdGroupPairs: [{ GroupId: 'sg-run' }] };
    expect(ec2Mock.commandCalls(AuthorizeSecurityGroupIngressCommand)[0]?.args[0].input).toEqual({ GroupId: 'sg-run', IpPermissions: [self] });
    expect(ec2Mock.commandCalls(AuthorizeSecurityGroupEgressCommand)[0]?.args[0].input).toEqual({ GroupId: 'sg-run', IpPermissions: [self] });
    expect(ec2Mock.commandCalls(RevokeSecurityGroupEgressCommand)[0]?.args[0].input).toEqual({ GroupId: 'sg-run', IpPermissions: [ALL_OUT] });
    expect(ec2Mock.commandCalls(RevokeSecurityGroupIngressCommand)).toHaveLength(0);
    expect(ec2Mock.commandCalls(CreatePlacementGroupCommand)[0]?.args[0].input).toEqual({
      GroupName: NAME,
      Strategy: 'cluster',
      TagSpecifications: [{ ResourceType: 'placement-group', Tags: TAGS }],
    });
  });

  it('finds both groups on a retry and adds no rule the group already has', async () => {
    ec2Mock.on(CreateSecurityGroupCommand).rejects(ec2Error('InvalidGroup.Duplicate', `The security group '${NAME}' already exists for VPC 'vpc-1'`));
    ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [group({ IpPermissions: [SELF], IpPermissionsEgress: [SELF] })] });
    ec2Mock.on(CreatePlacementGroupCommand).rejects(ec2Error('InvalidPlacementGroup.Duplicate'));
    ec2Mock.on(DescribePlacementGroupsCommand).resolves({ PlacementGroups: [{ GroupName: NAME, State: 'available', Tags: TAGS }] });

    const network = await networks().ensure('run-7f3a', { subnets: ['subnet-aaa'], instanceType: 'p4d.24xlarge' });

    expect(network).toEqual({ securityGroupId: 'sg-run', placementGroup: NAME });
    expect(ec2Mock.commandCalls(DescribeSecurityGroupsCommand)[0]?.args[0].input.Filters).toEqual([
      { Name: 'group-name', Values: [NAME] },
      { Name: 'vpc-id', Values: ['vpc-1'] },
      { Name: 'tag:runctl:stack', Values: [TEST_STACK] },
    ]);
    expect(ec2Mock.commandCalls(AuthorizeSecurityGroupIngressCommand)).toHaveLength(0);
    expect(ec2Mock.commandCalls(AuthorizeSecurityGroupEgressCommand)).toHaveLength(0);
    expect(ec2Mock.commandCalls(RevokeSecurityGroupEgressCommand)).toHaveLength(0);
  });

  it('revokes an ingress rule that is not the self rule (nothing but the run reaches its nodes)', async () => {
    const open = { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }] };
    ec2Mock.on(CreateSecurityGroupCommand).rejects(ec2Error('InvalidGroup.Duplicate'));
    ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [group({ IpPermissions: [SELF, open], IpPermissionsEgress: [SELF] })] });
    ec2Mock.on(RevokeSecurityGroupIngressCommand).resolves({ Return: true });

    await networks().ensure('run-7f3a', { subnets: ['subnet-aaa'], instanceType: 't3.large' });

    expect(ec2Mock.commandCalls(RevokeSecurityGroupIngressCommand)[0]?.args[0].input).toEqual({ GroupId: 'sg-run', IpPermissions: [open] });
  });

  it('takes a rule a concurrent call already added as done', async () => {
    ec2Mock.on(AuthorizeSecurityGroupIngressCommand).rejects(ec2Error('InvalidPermission.Duplicate'));
    ec2Mock.on(RevokeSecurityGroupEgressCommand).rejects(ec2Error('InvalidPermission.NotFound'));
    await expect(networks().ensure('run-7f3a', { subnets: ['subnet-aaa'], instanceType: 'p4d.24xlarge' })).resolves.toMatchObject({ securityGroupId: 'sg-run' });
  });

  it("refuses a group of that name that is not this stack's", async () => {
    ec2Mock.on(CreateSecurityGroupCommand).rejects(ec2Error('InvalidGroup.Duplicate'));
    ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [] });
    await expect(networks().ensure('run-7f3a', { subnets: ['subnet-aaa'], instanceType: 'p4d.24xlarge' })).rejects.toBeInstanceOf(ConflictError);
  });

  it("refuses a placement group of that name that is not this run's", async () => {
    ec2Mock.on(CreatePlacementGroupCommand).rejects(ec2Error('InvalidPlacementGroup.Duplicate'));
    const error = await networks().ensure('run-7f3a', { subnets: ['subnet-aaa'], instanceType: 'p4d.24xlarge' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error instanceof Error ? error.message : '').toContain(NAME);
  });

  it('skips the placement group for types EC2 does not place in one', async () => {
    const network = await networks().ensure('run-7f3a', { subnets: ['subnet-aaa'], instanceType: 't3.2xlarge' });
    expect(network).toEqual({ securityGroupId: 'sg-run' });
    expect(ec2Mock.commandCalls(CreatePlacementGroupCommand)).toHaveLength(0);
  });

  it('uses the configured default subnets, else the default VPC', async () => {
    await networks({ defaultSubnets: ['subnet-ccc'] }).ensure('run-7f3a', { subnets: [], instanceType: 'g5.12xlarge' });
    expect(ec2Mock.commandCalls(DescribeSubnetsCommand)[0]?.args[0].input).toEqual({ SubnetIds: ['subnet-ccc'] });

    ec2Mock.on(DescribeVpcsCommand).resolves({ Vpcs: [{ VpcId: 'vpc-default' }] });
    await networks().ensure('run-7f3a', { subnets: [], instanceType: 'g5.12xlarge' });
    expect(ec2Mock.commandCalls(DescribeVpcsCommand)[0]?.args[0].input).toEqual({ Filters: [{ Name: 'is-default', Values: ['true'] }] });
    expect(ec2Mock.commandCalls(CreateSecurityGroupCommand)[1]?.args[0].input.VpcId).toBe('vpc-default');
  });

  it('says what to configure when there is no subnet and no default VPC', async () => {
    ec2Mock.on(DescribeVpcsCommand).resolves({ Vpcs: [] });
    await expect(networks().ensure('run-7f3a', { subnets: [], instanceType: 'g5.12xlarge' })).rejects.toBeInstanceOf(PrecheckFailedError);
    expect(ec2Mock.commandCalls(CreateSecurityGroupCommand)).toHaveLength(0);
  });
});

describe('release', () => {
  beforeEach(() => {
    ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [group()] });
    ec2Mock.on(DescribePlacementGroupsCommand).resolves({ PlacementGroups: [{ GroupName: NAME, State: 'available', Tags: TAGS }] });
  });

  it("deletes the run's groups, found by its tags and this stack's", async () => {
    ec2Mock.on(DeleteSecurityGroupCommand).resolves({});
    ec2Mock.on(DeletePlacementGroupCommand).resolves({});

    await networks().release('run-7f3a');

    expect(ec2Mock.commandCalls(DeleteSecurityGroupCommand)[0]?.args[0].input).toEqual({ GroupId: 'sg-run' });
    expect(ec2Mock.commandCalls(DeletePlacementGroupCommand)[0]?.args[0].input).toEqual({ GroupName: NAME });
    const ours = [
      { Name: 'tag:runctl:stack', Values: [TEST_STACK] },
      { Name: 'tag:runctl:run', Values: ['run-7f3a'] },
    ];
    expect(ec2Mock.commandCalls(DescribeSecurityGroupsCommand)[0]?.args[0].input.Filters).toEqual(ours);
    expect(ec2Mock.commandCalls(DescribePlacementGroupsCommand)[0]?.args[0].input.Filters).toEqual(ours);
    expect(sleeps).toEqual([]);
  });

  it('takes groups that are already gone as released', async () => {
    ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [] });
    ec2Mock.on(DescribePlacementGroupsCommand).resolves({ PlacementGroups: [{ GroupName: NAME, State: 'deleted', Tags: TAGS }] });
    await networks().release('run-7f3a');

    ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [group()] });
    ec2Mock.on(DeleteSecurityGroupCommand).rejects(ec2Error('InvalidGroup.NotFound'));
    ec2Mock.on(DescribePlacementGroupsCommand).resolves({ PlacementGroups: [{ GroupName: NAME, State: 'available', Tags: TAGS }] });
    ec2Mock.on(DeletePlacementGroupCommand).rejects(ec2Error('InvalidPlacementGroup.Unknown'));
    await networks().release('run-7f3a');
    expect(ec2Mock.commandCalls(DeletePlacementGroupCommand)).toHaveLength(1);
  });

  it('waits, with backoff, while instances that are shutting down still hold the groups', async () => {
    ec2Mock
      .on(DeleteSecurityGroupCommand)
      .rejectsOnce(ec2Error('DependencyViolation', "resource sg-run has a dependent object"))
      .rejectsOnce(ec2Error('DependencyViolation', "resource sg-run has a dependent object"))
      .resolves({});
    ec2Mock
      .on(DeletePlacementGroupCommand)
      .rejectsOnce(ec2Error('InvalidPlacementGroup.InUse', `The placement group '${NAME}' is in use and may not be deleted.`))
      .resolves({});

    await networks().release('run-7f3a');

    expect(sleeps).toEqual([2_000, 4_000]);
    expect(ec2Mock.commandCalls(DeleteSecurityGroupCommand)).toHaveLength(3);
  });

  it('gives up after its tries with a Conflict naming what is left', async () => {
    ec2Mock.on(DeleteSecurityGroupCommand).rejects(ec2Error('DependencyViolation'));
    ec2Mock.on(DeletePlacementGroupCommand).rejects(ec2Error('InvalidPlacementGroup.InUse'));

    const error = await networks().release('run-7f3a').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConflictError);
    const message = error instanceof Error ? error.message : '';
    expect(message).toContain(`security group sg-run (${NAME})`);
    expect(message).toContain(`placement group ${NAME}`);
    expect(sleeps).toEqual([2_000, 4_000, 8_000]);
  });

  it('passes any other failure on as a named error', async () => {
    ec2Mock.on(DeleteSecurityGroupCommand).rejects(ec2Error('UnauthorizedOperation'));
    await expect(networks().release('run-7f3a')).rejects.toMatchObject({ name: 'Aws.CallFailed' });
  });
});

describe('listRunNetworks', () => {
  it("lists the runs of this stack's security groups and placement groups, once each", async () => {
    const tagged = (runId: string) => [
      { Key: 'runctl:run', Value: runId },
      { Key: 'runctl:stack', Value: TEST_STACK },
    ];
    ec2Mock
      .on(DescribeSecurityGroupsCommand)
      .resolvesOnce({ SecurityGroups: [group({ Tags: tagged('run-b') })], NextToken: 'page-2' })
      .resolvesOnce({ SecurityGroups: [group({ GroupId: 'sg-2', Tags: tagged('run-a') })] });
    ec2Mock.on(DescribePlacementGroupsCommand).resolves({
      PlacementGroups: [
        { GroupName: 'x', State: 'available', Tags: tagged('run-a') },
        { GroupName: 'y', State: 'available', Tags: tagged('run-c') },
        // Deleted moments ago: EC2 lists it for a while, but there is nothing left to release.
        { GroupName: 'z', State: 'deleted', Tags: tagged('run-d') },
      ],
    });

    await expect(networks().listRunNetworks()).resolves.toEqual(['run-a', 'run-b', 'run-c']);

    const filters = [
      { Name: 'tag:runctl:stack', Values: [TEST_STACK] },
      { Name: 'tag-key', Values: ['runctl:run'] },
    ];
    expect(ec2Mock.commandCalls(DescribeSecurityGroupsCommand)[1]?.args[0].input).toMatchObject({ Filters: filters, NextToken: 'page-2' });
    expect(ec2Mock.commandCalls(DescribePlacementGroupsCommand)[0]?.args[0].input.Filters).toEqual(filters);
  });
});

describe('supportsClusterPlacement', () => {
  it.each([
    ['p4d.24xlarge', true],
    ['g5.12xlarge', true],
    ['c5n.18xlarge', true],
    ['trn1.32xlarge', true],
    ['t3.large', false],
    ['t3a.xlarge', false],
    ['t4g.medium', false],
    ['t2.micro', false],
    ['mac2.metal', false],
    ['m7i-flex.large', false],
    ['m7i.large', true],
  ])('%s → %s', (type, expected) => {
    expect(supportsClusterPlacement(type)).toBe(expected);
  });
});
