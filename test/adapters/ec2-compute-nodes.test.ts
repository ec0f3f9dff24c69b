/**
 * The compute adapter's multi-node launches with a mocked EC2: what moto cannot do (refuse
 * capacity, replay a client token's reservation, lose a node between launch and retry).
 */
import {
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  EC2ServiceException,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Instance,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { Ec2Compute, clientToken } from '../../shared/adapters/ec2-compute';
import { CapacityUnavailableError, ConflictError, InstanceLostError, RunInvalidError } from '../../shared/errors';
import type { LaunchNodesRequest, LaunchRequest } from '../../shared/ports/compute';
import { TEST_STACK } from '../support/stack';

const ec2Mock = mockClient(EC2Client);

/** An EC2 error as the SDK's ec2 query deserializer builds it. */
function ec2Error(code: string, message: string, status = 400): EC2ServiceException {
  const error = new EC2ServiceException({
    name: code,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: '5c1c6c6c-8c5e-4d4c-9d3e-0b5e2a6f8e11', attempts: 1 },
    message,
  });
  return Object.assign(error, { Code: code });
}

/** What EC2 says when a zone has too few instances of the type for the whole request. */
const noCapacity = (type: string, zone: string) =>
  ec2Error(
    'InsufficientInstanceCapacity',
    `We currently do not have sufficient ${type} capacity in the Availability Zone you requested (${zone}). Our system ` +
      `will be working on provisioning additional capacity. You can currently get ${type} capacity by not specifying an ` +
      'Availability Zone in your request or choosing us-east-1b, us-east-1c.',
    500,
  );

function node(index: number, overrides: Partial<Instance> = {}): Instance {
  return {
    InstanceId: `i-0node${index}`,
    InstanceType: 'g5.12xlarge',
    AmiLaunchIndex: index,
    PrivateIpAddress: `10.0.1.${10 + index}`,
    LaunchTime: new Date('2025-03-01T10:00:00.000Z'),
    Placement: { AvailabilityZone: 'us-east-1a', GroupName: 'runctl-test-run-7f3a' },
    SubnetId: 'subnet-aaa',
    State: { Code: 0, Name: 'pending' },
    InstanceLifecycle: 'spot',
    ...overrides,
  };
}

function nodesRequest(overrides: Partial<LaunchNodesRequest> = {}): LaunchNodesRequest {
  return {
    runId: 'run-7f3a',
    attempt: 2,
    count: 3,
    instanceTypes: ['g5.12xlarge'],
    subnets: ['subnet-aaa', 'subnet-bbb'],
    spot: true,
    onDemandFallback: false,
    ami: 'ami-0123456789abcdef0',
    rootVolumeGiB: 200,
    tags: { team: 'vision' },
    network: { placementGroup: 'runctl-test-run-7f3a', securityGroupId: 'sg-nodes' },
    ...overrides,
  };
}

function compute(): Ec2Compute {
  return new Ec2Compute({
    ec2: new EC2Client({ region: 'us-east-1' }),
    ssm: new SSMClient({ region: 'us-east-1' }),
    stack: TEST_STACK,
    securityGroupIds: ['sg-stack'],
    throttleRetry: { attempts: 3, baseMs: 1, sleep: async () => undefined },
  });
}

function runInputs(): RunInstancesCommandInput[] {
  return ec2Mock.commandCalls(RunInstancesCommand).map((call) => call.args[0].input);
}

function rankTags(): [string | undefined, string | undefined][] {
  return ec2Mock
    .commandCalls(CreateTagsCommand)
    .map((call): [string | undefined, string | undefined] => [call.args[0].input.Resources?.[0], call.args[0].input.Tags?.find((t) => t.Key === 'runctl:rank')?.Value])
    .sort();
}

beforeEach(() => {
  ec2Mock.reset();
  ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
  ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-0123456789abcdef0', RootDeviceName: '/dev/sda1' }] });
  ec2Mock.on(CreateTagsCommand).resolves({});
  ec2Mock.on(TerminateInstancesCommand).resolves({});
});

describe('launchNodes', () => {
  it("asks for the whole fleet in one RunInstances, in the run's placement group and node security group", async () => {
    // EC2 does not promise the order of a reservation's instances: ranks follow the launch index.
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [node(2), node(0), node(1)] });

    const nodes = await compute().launchNodes(nodesRequest());

    expect(nodes.map((n) => [n.instanceId, n.rank, n.privateIp])).toEqual([
      ['i-0node0', 0, '10.0.1.10'],
      ['i-0node1', 1, '10.0.1.11'],
      ['i-0node2', 2, '10.0.1.12'],
    ]);
    expect(nodes[0]).toMatchObject({ instanceType: 'g5.12xlarge', availabilityZone: 'us-east-1a', subnetId: 'subnet-aaa', spot: true, misses: [] });
    expect(runInputs()).toHaveLength(1);
    expect(runInputs()[0]).toMatchObject({
      ClientToken: 'run-7f3a-2-n3',
      MinCount: 3,
      MaxCount: 3,
      SubnetId: 'subnet-aaa',
      Placement: { GroupName: 'runctl-test-run-7f3a' },
      SecurityGroupIds: ['sg-stack', 'sg-nodes'],
    });
    expect(rankTags()).toEqual([
      ['i-0node0', '0'],
      ['i-0node1', '1'],
      ['i-0node2', '2'],
    ]);
    expect(ec2Mock.commandCalls(CreateTagsCommand).every((c) => c.args[0].input.Tags?.length === 1)).toBe(true);
  });

  it('walks on when a try cannot hold every node, with a token of its own per try; nothing is left to release', async () => {
    ec2Mock
      .on(RunInstancesCommand, { SubnetId: 'subnet-aaa' })
      .rejects(noCapacity('g5.12xlarge', 'us-east-1a'))
      .on(RunInstancesCommand, { SubnetId: 'subnet-bbb' })
      .resolves({ Instances: [0, 1, 2].map((i) => node(i, { SubnetId: 'subnet-bbb', Placement: { AvailabilityZone: 'us-east-1b' } })) });

    const nodes = await compute().launchNodes(nodesRequest());

    expect(nodes.map((n) => n.subnetId)).toEqual(['subnet-bbb', 'subnet-bbb', 'subnet-bbb']);
    expect(nodes[0]?.misses).toEqual([{ instanceType: 'g5.12xlarge', subnetId: 'subnet-aaa', spot: true, code: 'InsufficientInstanceCapacity' }]);
    expect(runInputs().map((i) => [i.ClientToken, i.MinCount, i.MaxCount])).toEqual([
      ['run-7f3a-2-n3', 3, 3],
      ['run-7f3a-2-n3-1', 3, 3],
    ]);
    expect(ec2Mock.commandCalls(TerminateInstancesCommand)).toHaveLength(0);
  });

  it('throws Capacity.Unavailable saying the nodes were asked for at once, after the whole walk', async () => {
    ec2Mock.on(RunInstancesCommand).rejects(noCapacity('g5.12xlarge', 'us-east-1a'));

    const error = await compute().launchNodes(nodesRequest({ instanceTypes: ['g5.12xlarge', 'g6.12xlarge'] })).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CapacityUnavailableError);
    expect(error instanceof Error ? error.message : '').toContain('(3 nodes at once)');
    expect(runInputs()).toHaveLength(4);
    expect(ec2Mock.commandCalls(CreateTagsCommand)).toHaveLength(0);
  });

  it("adopts the attempt's whole fleet on a retry, tagging the ranks a previous call did not get to", async () => {
    const rank = (r: number) => [
      { Key: 'runctl:run', Value: 'run-7f3a' },
      { Key: 'runctl:rank', Value: String(r) },
    ];
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [node(1, { Tags: rank(1) }), node(0, { Tags: rank(0) }), node(2, { State: { Name: 'running' } })] }],
    });

    const nodes = await compute().launchNodes(nodesRequest());

    expect(nodes.map((n) => n.instanceId)).toEqual(['i-0node0', 'i-0node1', 'i-0node2']);
    expect(runInputs()).toHaveLength(0);
    expect(rankTags()).toEqual([['i-0node2', '2']]);
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)[0]?.args[0].input.Filters).toEqual(
      expect.arrayContaining([
        { Name: 'tag:runctl:run', Values: ['run-7f3a'] },
        { Name: 'tag:runctl:attempt', Values: ['2'] },
        { Name: 'tag:runctl:stack', Values: [TEST_STACK] },
        { Name: 'instance-state-name', Values: ['pending', 'running'] },
      ]),
    );
  });

  it('replays the token when the lookup sees part of the fleet, and takes the whole reservation EC2 answers with', async () => {
    // EC2 is eventually consistent: the lookup missed a node the first call launched.
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [node(0), node(1)] }] });
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [node(0), node(1), node(2)] });

    const nodes = await compute().launchNodes(nodesRequest());

    expect(nodes.map((n) => n.instanceId)).toEqual(['i-0node0', 'i-0node1', 'i-0node2']);
    expect(runInputs().map((i) => i.ClientToken)).toEqual(['run-7f3a-2-n3']);
    expect(ec2Mock.commandCalls(TerminateInstancesCommand)).toHaveLength(0);
  });

  it('terminates the survivors and throws Instance.Lost when the replayed reservation lost a node', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [node(0), node(2)] }] });
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [node(0), node(1, { State: { Name: 'shutting-down' } }), node(2)] });

    const error = await compute().launchNodes(nodesRequest()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InstanceLostError);
    expect(error instanceof Error ? error.message : '').toContain('rank 1 (i-0node1, shutting-down)');
    const terminated = ec2Mock.commandCalls(TerminateInstancesCommand).flatMap((c) => c.args[0].input.InstanceIds ?? []);
    expect(terminated.sort()).toEqual(['i-0node0', 'i-0node2']);
    expect(ec2Mock.commandCalls(CreateTagsCommand)).toHaveLength(0);
  });

  it('on IdempotentParameterMismatch adopts the whole fleet if there is one, else raises Conflict', async () => {
    ec2Mock.on(RunInstancesCommand).rejects(ec2Error('IdempotentParameterMismatch', 'Arguments on this idempotent request are inconsistent'));
    ec2Mock
      .on(DescribeInstancesCommand)
      .resolvesOnce({ Reservations: [] })
      .resolves({ Reservations: [{ Instances: [node(0), node(1), node(2)] }] });
    await expect(compute().launchNodes(nodesRequest())).resolves.toHaveLength(3);

    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    const error = await compute().launchNodes(nodesRequest()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error instanceof Error ? error.message : '').toContain('run-7f3a-2-n3');
  });

  it('tags a rank again while EC2 does not know the new instance yet', async () => {
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [node(0), node(1)] });
    ec2Mock
      .on(CreateTagsCommand, { Resources: ['i-0node1'] })
      .rejectsOnce(ec2Error('InvalidInstanceID.NotFound', "The instance ID 'i-0node1' does not exist"))
      .resolves({});

    const nodes = await compute().launchNodes(nodesRequest({ count: 2 }));

    expect(nodes.map((n) => n.rank)).toEqual([0, 1]);
    expect(ec2Mock.commandCalls(CreateTagsCommand, { Resources: ['i-0node1'] })).toHaveLength(2);
  });

  it('refuses a fleet of no nodes before any call', async () => {
    await expect(compute().launchNodes(nodesRequest({ count: 0 }))).rejects.toBeInstanceOf(RunInvalidError);
    expect(ec2Mock.calls()).toHaveLength(0);
  });

  it('reports a reservation that is not the whole fleet as Aws.CallFailed', async () => {
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [node(0)] });
    await expect(compute().launchNodes(nodesRequest({ count: 2 }))).rejects.toMatchObject({ name: 'Aws.CallFailed' });
  });
});

describe('launch of one rank (the replacement of a lost node)', () => {
  function rankRequest(overrides: Partial<LaunchRequest> = {}): LaunchRequest {
    const { count: _count, ...base } = nodesRequest();
    return { ...base, rank: 1, subnetId: 'subnet-bbb', ...overrides };
  }

  it("launches in its fleet's subnet and network with a token and a tag of its rank", async () => {
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [node(0, { InstanceId: 'i-0repl', SubnetId: 'subnet-bbb' })] });

    const launched = await compute().launch(rankRequest());

    expect(launched).toMatchObject({ instanceId: 'i-0repl', rank: 1, privateIp: '10.0.1.10', subnetId: 'subnet-bbb' });
    const [input] = runInputs();
    expect(input).toMatchObject({
      ClientToken: 'run-7f3a-2-r1',
      MinCount: 1,
      MaxCount: 1,
      SubnetId: 'subnet-bbb',
      Placement: { GroupName: 'runctl-test-run-7f3a' },
      SecurityGroupIds: ['sg-stack', 'sg-nodes'],
    });
    for (const spec of input?.TagSpecifications ?? []) expect(spec.Tags).toContainEqual({ Key: 'runctl:rank', Value: '1' });
    // Its rank is tagged at launch: no CreateTags of its own.
    expect(ec2Mock.commandCalls(CreateTagsCommand)).toHaveLength(0);
  });

  it('walks the types in the pinned subnet only, with rank tokens', async () => {
    ec2Mock
      .on(RunInstancesCommand, { InstanceType: 'g5.12xlarge' })
      .rejects(noCapacity('g5.12xlarge', 'us-east-1b'))
      .on(RunInstancesCommand, { InstanceType: 'g6.12xlarge' })
      .resolves({ Instances: [node(0, { InstanceType: 'g6.12xlarge', SubnetId: 'subnet-bbb' })] });

    await compute().launch(rankRequest({ instanceTypes: ['g5.12xlarge', 'g6.12xlarge'] }));

    expect(runInputs().map((i) => [i.ClientToken, i.SubnetId])).toEqual([
      ['run-7f3a-2-r1', 'subnet-bbb'],
      ['run-7f3a-2-r1-1', 'subnet-bbb'],
    ]);
  });

  it('adopts only the live instance of its own rank', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [node(0, { InstanceId: 'i-0rank1', State: { Name: 'running' } })] }] });

    const launched = await compute().launch(rankRequest());

    expect(launched).toMatchObject({ instanceId: 'i-0rank1', rank: 1 });
    expect(runInputs()).toHaveLength(0);
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)[0]?.args[0].input.Filters).toContainEqual({ Name: 'tag:runctl:rank', Values: ['1'] });
  });
});

describe('listTaggedInstances', () => {
  it("fills each node's rank from its tag", async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            node(0, { InstanceId: 'i-a', Tags: [{ Key: 'runctl:run', Value: 'r' }, { Key: 'runctl:attempt', Value: '1' }, { Key: 'runctl:rank', Value: '3' }] }),
            node(1, { InstanceId: 'i-b', Tags: [{ Key: 'runctl:run', Value: 's' }, { Key: 'runctl:attempt', Value: '1' }] }),
          ],
        },
      ],
    });
    const listed = await compute().listTaggedInstances();
    expect(listed.map((i) => [i.instanceId, i.rank])).toEqual([
      ['i-a', 3],
      ['i-b', undefined],
    ]);
  });
});

describe('clientToken scopes', () => {
  it('keeps a fleet, each rank and the single-node launch of one attempt apart, and stays within 64 characters', () => {
    expect(clientToken('r', 3, 0, 'n4')).toBe('r-3-n4');
    expect(clientToken('r', 3, 2, 'n4')).toBe('r-3-n4-2');
    expect(clientToken('r', 3, 0, 'r1')).toBe('r-3-r1');
    expect(new Set([clientToken('r', 3, 1), clientToken('r', 3, 1, 'n4'), clientToken('r', 3, 1, 'r1')]).size).toBe(3);
    const long = clientToken('x'.repeat(60), 1, 0, 'r12');
    expect(long).toHaveLength(64);
    expect(long).not.toBe(clientToken('x'.repeat(60), 1, 0, 'r13'));
  });
});
