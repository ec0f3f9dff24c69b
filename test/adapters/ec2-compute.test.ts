import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  EC2ServiceException,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Instance,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  GetParameterCommand,
  InvalidInstanceId,
  InvocationDoesNotExist,
  ParameterNotFound,
  SendCommandCommand,
  SSMClient,
  type PingStatus,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_DLAMI_PARAMETER } from '../../shared/adapters/dlami';
import { Ec2Compute, clientToken, launchTags } from '../../shared/adapters/ec2-compute';
import {
  AwsCallFailedError,
  CapacityUnavailableError,
  ConflictError,
  InstanceNotReadyError,
  PrecheckFailedError,
  RunInvalidError,
  ThrottledError,
} from '../../shared/errors';
import type { LaunchRequest } from '../../shared/ports/compute';
import { TEST_STACK } from '../support/stack';

const ec2Mock = mockClient(EC2Client);
const ssmMock = mockClient(SSMClient);

/** An EC2 error as the SDK's ec2 query deserializer builds it. */
function ec2Error(code: string, status = 400): EC2ServiceException {
  const error = new EC2ServiceException({
    name: code,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: '5c1c6c6c-8c5e-4d4c-9d3e-0b5e2a6f8e11', attempts: 1 },
    message: `${code}: the service said no`,
  });
  return Object.assign(error, { Code: code });
}

const LAUNCHED_AT = new Date('2025-03-01T10:00:00.000Z');

function instance(overrides: Partial<Instance> = {}): Instance {
  return {
    InstanceId: 'i-0abc1234def567890',
    InstanceType: 'g5.xlarge',
    ImageId: 'ami-0123456789abcdef0',
    LaunchTime: LAUNCHED_AT,
    Placement: { AvailabilityZone: 'us-east-1a' },
    SubnetId: 'subnet-aaa',
    State: { Code: 0, Name: 'pending' },
    InstanceLifecycle: 'spot',
    ...overrides,
  };
}

function request(overrides: Partial<LaunchRequest> = {}): LaunchRequest {
  return {
    runId: 'run-7f3a',
    attempt: 2,
    instanceTypes: ['g5.xlarge'],
    subnets: ['subnet-aaa'],
    spot: true,
    onDemandFallback: false,
    ami: 'ami-0123456789abcdef0',
    rootVolumeGiB: 200,
    tags: { team: 'vision' },
    ...overrides,
  };
}

function compute(extra: Partial<ConstructorParameters<typeof Ec2Compute>[0]> = {}): Ec2Compute {
  return new Ec2Compute({
    ec2: new EC2Client({ region: 'us-east-1' }),
    ssm: new SSMClient({ region: 'us-east-1' }),
    stack: TEST_STACK,
    throttleRetry: { attempts: 3, baseMs: 1, sleep: async () => undefined },
    ...extra,
  });
}

function runInputs(): RunInstancesCommandInput[] {
  return ec2Mock.commandCalls(RunInstancesCommand).map((call) => call.args[0].input);
}

beforeEach(() => {
  ec2Mock.reset();
  ssmMock.reset();
  ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
  ec2Mock.on(DescribeImagesCommand).resolves({
    Images: [{ ImageId: 'ami-0123456789abcdef0', RootDeviceName: '/dev/sda1' }],
  });
});

describe('launch', () => {
  it('asks for a one-time spot instance with IMDSv2, tags on instance and volume, and a gp3 root volume', async () => {
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [instance()] });

    const launched = await compute({ defaultInstanceProfile: 'runctl-training', securityGroupIds: ['sg-1'] }).launch(
      request({ maxSpotPriceUsd: 0.5 }),
    );

    expect(launched).toEqual({
      instanceId: 'i-0abc1234def567890',
      instanceType: 'g5.xlarge',
      availabilityZone: 'us-east-1a',
      subnetId: 'subnet-aaa',
      spot: true,
      launchedAt: '2025-03-01T10:00:00.000Z',
      misses: [],
    });
    const [input] = runInputs();
    expect(input).toMatchObject({
      ClientToken: 'run-7f3a-2',
      ImageId: 'ami-0123456789abcdef0',
      InstanceType: 'g5.xlarge',
      MinCount: 1,
      MaxCount: 1,
      SubnetId: 'subnet-aaa',
      SecurityGroupIds: ['sg-1'],
      IamInstanceProfile: { Name: 'runctl-training' },
      InstanceMarketOptions: {
        MarketType: 'spot',
        SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate', MaxPrice: '0.5' },
      },
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', InstanceMetadataTags: 'enabled' },
      BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 200, VolumeType: 'gp3', DeleteOnTermination: true } }],
    });
    const expectedTags = expect.arrayContaining([
      { Key: 'runctl:run', Value: 'run-7f3a' },
      { Key: 'runctl:attempt', Value: '2' },
      { Key: 'runctl:stack', Value: TEST_STACK },
      { Key: 'team', Value: 'vision' },
      { Key: 'Name', Value: 'runctl-run-7f3a-2' },
    ]);
    expect(input?.TagSpecifications).toEqual([
      { ResourceType: 'instance', Tags: expectedTags },
      { ResourceType: 'volume', Tags: expectedTags },
    ]);
  });

  it('never lets a user tag overwrite the runctl tags', async () => {
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [instance()] });
    await compute().launch(request({ tags: { 'runctl:run': 'someone-else', 'runctl:stack': 'runctl-prod', Name: 'mine' } }));
    const tags = runInputs()[0]?.TagSpecifications?.[0]?.Tags;
    expect(tags).toContainEqual({ Key: 'runctl:run', Value: 'run-7f3a' });
    expect(tags).toContainEqual({ Key: 'runctl:stack', Value: TEST_STACK });
    expect(tags).toContainEqual({ Key: 'Name', Value: 'mine' });
    expect(tags?.filter((t) => t.Key === 'runctl:run')).toHaveLength(1);
    expect(tags?.filter((t) => t.Key === 'runctl:stack')).toHaveLength(1);
  });

  it('walks to the next type on InsufficientInstanceCapacity, with a distinct deterministic token per try', async () => {
    ec2Mock
      .on(RunInstancesCommand, { InstanceType: 'g5.xlarge' })
      .rejects(ec2Error('InsufficientInstanceCapacity', 500))
      .on(RunInstancesCommand, { InstanceType: 'g6.xlarge' })
      .resolves({ Instances: [instance({ InstanceType: 'g6.xlarge', SubnetId: 'subnet-aaa' })] });

    const launched = await compute().launch(request({ instanceTypes: ['g5.xlarge', 'g6.xlarge'] }));

    expect(launched.instanceType).toBe('g6.xlarge');
    expect(launched.misses).toEqual([
      { instanceType: 'g5.xlarge', subnetId: 'subnet-aaa', spot: true, code: 'InsufficientInstanceCapacity' },
    ]);
    expect(runInputs().map((i) => i.ClientToken)).toEqual(['run-7f3a-2', 'run-7f3a-2-1']);
  });

  it('throws Capacity.Unavailable listing every try when all are refused, without trying on-demand', async () => {
    ec2Mock
      .on(RunInstancesCommand, { InstanceType: 'g5.xlarge' })
      .rejects(ec2Error('InsufficientInstanceCapacity', 500))
      .on(RunInstancesCommand, { InstanceType: 'g6.xlarge' })
      .rejects(ec2Error('MaxSpotInstanceCountExceeded'));

    const error = await compute()
      .launch(request({ instanceTypes: ['g5.xlarge', 'g6.xlarge'], subnets: ['subnet-aaa', 'subnet-bbb'] }))
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CapacityUnavailableError);
    expect(error).toMatchObject({ name: 'Capacity.Unavailable' });
    const message = error instanceof Error ? error.message : '';
    expect(message).toContain('g5.xlarge spot in subnet-aaa (InsufficientInstanceCapacity)');
    expect(message).toContain('g5.xlarge spot in subnet-bbb (InsufficientInstanceCapacity)');
    expect(message).toContain('g6.xlarge spot in subnet-bbb (MaxSpotInstanceCountExceeded)');
    expect(runInputs()).toHaveLength(4);
    expect(runInputs().every((i) => i.InstanceMarketOptions?.MarketType === 'spot')).toBe(true);
  });

  it('falls back to on-demand only when allowed, after the whole spot walk', async () => {
    ec2Mock
      .on(RunInstancesCommand)
      .rejects(ec2Error('InsufficientInstanceCapacity', 500))
      .on(RunInstancesCommand, { InstanceType: 'g5.xlarge', InstanceMarketOptions: undefined })
      .resolves({ Instances: [instance({ InstanceLifecycle: undefined })] });

    const launched = await compute().launch(request({ instanceTypes: ['g5.xlarge', 'g6.xlarge'], onDemandFallback: true }));

    expect(launched.spot).toBe(false);
    expect(launched.misses.map((m) => `${m.instanceType}/${m.spot}`)).toEqual(['g5.xlarge/true', 'g6.xlarge/true']);
    const inputs = runInputs();
    expect(inputs.map((i) => i.InstanceMarketOptions?.MarketType ?? 'on-demand')).toEqual(['spot', 'spot', 'on-demand']);
    expect(inputs.map((i) => i.ClientToken)).toEqual(['run-7f3a-2', 'run-7f3a-2-1', 'run-7f3a-2-2']);
  });

  it('launches on-demand straight away when spot is off', async () => {
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [instance({ InstanceLifecycle: undefined })] });
    const launched = await compute().launch(request({ spot: false }));
    expect(launched.spot).toBe(false);
    expect(runInputs()[0]?.InstanceMarketOptions).toBeUndefined();
  });

  it('pins the AZ: only subnets of that zone are tried', async () => {
    ec2Mock.on(DescribeSubnetsCommand).resolves({
      Subnets: [
        { SubnetId: 'subnet-aaa', AvailabilityZone: 'us-east-1a' },
        { SubnetId: 'subnet-bbb', AvailabilityZone: 'us-east-1b' },
        { SubnetId: 'subnet-ccc', AvailabilityZone: 'us-east-1b' },
      ],
    });
    ec2Mock.on(RunInstancesCommand).rejects(ec2Error('InsufficientInstanceCapacity', 500));

    await expect(
      compute().launch(request({ subnets: ['subnet-aaa', 'subnet-bbb', 'subnet-ccc'], availabilityZone: 'us-east-1b' })),
    ).rejects.toBeInstanceOf(CapacityUnavailableError);

    expect(runInputs().map((i) => i.SubnetId)).toEqual(['subnet-bbb', 'subnet-ccc']);
  });

  it('refuses a pinned AZ that none of the subnets is in', async () => {
    ec2Mock.on(DescribeSubnetsCommand).resolves({ Subnets: [{ SubnetId: 'subnet-aaa', AvailabilityZone: 'us-east-1a' }] });
    await expect(compute().launch(request({ availabilityZone: 'us-east-1c' }))).rejects.toBeInstanceOf(PrecheckFailedError);
    expect(runInputs()).toHaveLength(0);
  });

  it('uses the default VPC default-for-az subnets, in AZ order, when none are given', async () => {
    ec2Mock
      .on(DescribeSubnetsCommand, { Filters: [{ Name: 'default-for-az', Values: ['true'] }] })
      .resolves({
        Subnets: [
          { SubnetId: 'subnet-b', AvailabilityZone: 'us-east-1b' },
          { SubnetId: 'subnet-a', AvailabilityZone: 'us-east-1a' },
        ],
      });
    ec2Mock.on(RunInstancesCommand).rejects(ec2Error('InsufficientInstanceCapacity', 500));

    await expect(compute().launch(request({ subnets: [] }))).rejects.toBeInstanceOf(CapacityUnavailableError);
    expect(runInputs().map((i) => i.SubnetId)).toEqual(['subnet-a', 'subnet-b']);
  });

  it('resolves the AMI from the DLAMI SSM parameter when the request names none', async () => {
    ssmMock
      .on(GetParameterCommand, { Name: DEFAULT_DLAMI_PARAMETER })
      .resolves({ Parameter: { Name: DEFAULT_DLAMI_PARAMETER, Type: 'String', Value: 'ami-0fedcba9876543210' } });
    ec2Mock.on(DescribeImagesCommand, { ImageIds: ['ami-0fedcba9876543210'] }).resolves({
      Images: [{ ImageId: 'ami-0fedcba9876543210', RootDeviceName: '/dev/xvda' }],
    });
    ec2Mock.on(RunInstancesCommand).resolves({ Instances: [instance()] });

    await compute().launch(request({ ami: undefined }));

    expect(runInputs()[0]).toMatchObject({
      ImageId: 'ami-0fedcba9876543210',
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda' }],
    });
  });

  it('reports a missing AMI parameter as Aws.CallFailed naming the parameter', async () => {
    ssmMock.on(GetParameterCommand).rejects(new ParameterNotFound({ $metadata: { httpStatusCode: 400 }, message: '' }));
    const error = await compute({ amiParameter: '/custom/ami' })
      .launch(request({ ami: undefined }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsCallFailedError);
    expect(error instanceof Error ? error.message : '').toContain('/custom/ami');
    expect(error).toHaveProperty('cause.name', 'ParameterNotFound');
  });

  it('retries a throttled RunInstances with the same client token, then succeeds', async () => {
    ec2Mock
      .on(RunInstancesCommand)
      .rejectsOnce(ec2Error('RequestLimitExceeded', 503))
      .resolves({ Instances: [instance()] });

    const launched = await compute().launch(request());

    expect(launched.instanceId).toBe('i-0abc1234def567890');
    expect(runInputs().map((i) => i.ClientToken)).toEqual(['run-7f3a-2', 'run-7f3a-2']);
  });

  it('surfaces throttling that outlasts the retries as Aws.Throttled with the SDK error as cause', async () => {
    const throttled = ec2Error('RequestLimitExceeded', 503);
    ec2Mock.on(RunInstancesCommand).rejects(throttled);
    const error = await compute().launch(request()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ThrottledError);
    expect(error).toHaveProperty('cause', throttled);
    expect(runInputs()).toHaveLength(3);
  });

  it('translates any other error into a named error that keeps the cause', async () => {
    const denied = ec2Error('UnauthorizedOperation', 403);
    ec2Mock.on(RunInstancesCommand).rejects(denied);
    const error = await compute().launch(request({ instanceTypes: ['g5.xlarge', 'g6.xlarge'] })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsCallFailedError);
    expect(error).toHaveProperty('cause', denied);
    expect(runInputs()).toHaveLength(1);
  });

  it('adopts the live instance of the same attempt instead of launching another', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [instance({ InstanceId: 'i-already', State: { Name: 'running' } })] }],
    });
    const launched = await compute().launch(request());
    expect(launched.instanceId).toBe('i-already');
    expect(runInputs()).toHaveLength(0);
    const filters = ec2Mock.commandCalls(DescribeInstancesCommand)[0]?.args[0].input.Filters;
    expect(filters).toEqual(
      expect.arrayContaining([
        { Name: 'tag:runctl:run', Values: ['run-7f3a'] },
        { Name: 'tag:runctl:attempt', Values: ['2'] },
        // Another stack's instance of a run with the same id is never adopted.
        { Name: 'tag:runctl:stack', Values: [TEST_STACK] },
      ]),
    );
  });

  it('on IdempotentParameterMismatch adopts the instance if one exists, else raises Conflict', async () => {
    ec2Mock.on(RunInstancesCommand).rejects(ec2Error('IdempotentParameterMismatch'));
    ec2Mock
      .on(DescribeInstancesCommand)
      .resolvesOnce({ Reservations: [] })
      .resolves({ Reservations: [{ Instances: [instance({ InstanceId: 'i-from-first-try' })] }] });
    await expect(compute().launch(request())).resolves.toMatchObject({ instanceId: 'i-from-first-try' });

    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    const error = await compute().launch(request()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error instanceof Error ? error.message : '').toContain('run-7f3a-2');
  });

  it('refuses unknown instance types and tag keys EC2 metadata would reject, before any launch', async () => {
    await expect(compute().launch(request({ instanceTypes: ['g5.xlarg'] }))).rejects.toBeInstanceOf(RunInvalidError);
    await expect(compute().launch(request({ tags: { 'a/b': 'x' } }))).rejects.toBeInstanceOf(RunInvalidError);
    expect(runInputs()).toHaveLength(0);
  });
});

describe('clientToken', () => {
  it('is runId-attempt first, suffixed by the try index after, and never longer than 64', () => {
    expect(clientToken('r', 3, 0)).toBe('r-3');
    expect(clientToken('r', 3, 4)).toBe('r-3-4');
    const long = clientToken('x'.repeat(80), 1, 0);
    expect(long).toHaveLength(64);
    expect(clientToken('x'.repeat(80), 1, 0)).toBe(long);
    expect(clientToken('x'.repeat(80), 1, 1)).not.toBe(long);
  });
});

describe('readiness', () => {
  it('is gone when EC2 no longer knows the instance', async () => {
    ec2Mock.on(DescribeInstancesCommand).rejects(ec2Error('InvalidInstanceID.NotFound'));
    await expect(compute().readiness('i-gone')).resolves.toEqual({ state: 'gone', ready: false, agentOnline: false });
  });

  it('is not ready while pending, and does not ask SSM', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [instance({ State: { Name: 'pending' } })] }] });
    await expect(compute().readiness('i-1')).resolves.toEqual({ state: 'pending', ready: false, agentOnline: false });
    expect(ssmMock.commandCalls(DescribeInstanceInformationCommand)).toHaveLength(0);
  });

  it.each<[PingStatus | undefined, boolean]>([
    ['Online', true],
    ['ConnectionLost', false],
    [undefined, false],
  ])('running with SSM ping %s → ready %s', async (ping, ready) => {
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [instance({ State: { Name: 'running' } })] }] });
    ssmMock.on(DescribeInstanceInformationCommand).resolves({
      InstanceInformationList: ping === undefined ? [] : [{ InstanceId: 'i-0abc1234def567890', PingStatus: ping }],
    });
    await expect(compute().readiness('i-0abc1234def567890')).resolves.toEqual({ state: 'running', ready, agentOnline: ready });
    expect(ssmMock.commandCalls(DescribeInstanceInformationCommand)[0]?.args[0].input.Filters).toEqual([
      { Key: 'InstanceIds', Values: ['i-0abc1234def567890'] },
    ]);
  });

  it('reports a terminated instance as such', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [instance({ State: { Name: 'terminated' } })] }] });
    await expect(compute().readiness('i-1')).resolves.toMatchObject({ state: 'terminated', ready: false });
  });
});

describe('terminate', () => {
  it('treats an instance EC2 no longer knows as terminated', async () => {
    ec2Mock.on(TerminateInstancesCommand).rejects(ec2Error('InvalidInstanceID.NotFound'));
    await expect(compute().terminate('i-gone')).resolves.toBeUndefined();
  });

  it('passes other failures on as named errors', async () => {
    ec2Mock.on(TerminateInstancesCommand).rejects(ec2Error('UnauthorizedOperation', 403));
    await expect(compute().terminate('i-1')).rejects.toBeInstanceOf(AwsCallFailedError);
  });
});

describe('SSM commands', () => {
  it('sends the script through AWS-RunShellScript with its timeout and a comment cut to 100 characters', async () => {
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
    const id = await compute().sendCommand('i-1', 'echo hi', { timeoutSeconds: 900, comment: 'c'.repeat(150) });
    expect(id).toBe('cmd-1');
    const input = ssmMock.commandCalls(SendCommandCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      InstanceIds: ['i-1'],
      DocumentName: 'AWS-RunShellScript',
      Parameters: { commands: ['echo hi'], executionTimeout: ['900'] },
      TimeoutSeconds: 900,
    });
    expect(input?.Comment).toHaveLength(100);
  });

  it('reports an instance SSM cannot reach as Instance.NotReady', async () => {
    ssmMock.on(SendCommandCommand).rejects(new InvalidInstanceId({ $metadata: { httpStatusCode: 400 }, message: '' }));
    await expect(compute().sendCommand('i-1', 'true')).rejects.toBeInstanceOf(InstanceNotReadyError);
  });

  it('reads an invocation that does not exist yet as Pending', async () => {
    ssmMock
      .on(GetCommandInvocationCommand)
      .rejects(new InvocationDoesNotExist({ $metadata: { httpStatusCode: 400 }, message: '' }));
    await expect(compute().commandResult('i-1', 'cmd-1')).resolves.toEqual({ status: 'Pending', stdout: '', stderr: '' });
  });

  it('maps a finished invocation to its exit code and output', async () => {
    ssmMock.on(GetCommandInvocationCommand).resolves({
      Status: 'Failed',
      ResponseCode: 3,
      StandardOutputContent: 'out',
      StandardErrorContent: 'err',
    });
    await expect(compute().commandResult('i-1', 'cmd-1')).resolves.toEqual({
      status: 'Failed',
      exitCode: 3,
      stdout: 'out',
      stderr: 'err',
    });
  });

  it('gives no exit code while the command runs', async () => {
    ssmMock.on(GetCommandInvocationCommand).resolves({ Status: 'InProgress', ResponseCode: -1 });
    await expect(compute().commandResult('i-1', 'cmd-1')).resolves.toEqual({
      status: 'InProgress',
      exitCode: undefined,
      stdout: '',
      stderr: '',
    });
  });
});

describe('listTaggedInstances', () => {
  it('reads every page of non-terminated tagged instances', async () => {
    const tags = (run: string, attempt: string) => [
      { Key: 'runctl:run', Value: run },
      { Key: 'runctl:attempt', Value: attempt },
    ];
    ec2Mock
      .on(DescribeInstancesCommand)
      .resolvesOnce({
        Reservations: [{ Instances: [instance({ InstanceId: 'i-1', Tags: tags('run-a', '1'), State: { Name: 'running' } })] }],
        NextToken: 'page-2',
      })
      .resolvesOnce({
        Reservations: [
          { Instances: [instance({ InstanceId: 'i-2', Tags: tags('run-b', 'x'), InstanceLifecycle: undefined, State: { Name: 'stopped' } })] },
        ],
      });

    const listed = await compute().listTaggedInstances();

    expect(listed).toEqual([
      { instanceId: 'i-1', runId: 'run-a', attempt: 1, state: 'running', launchedAt: LAUNCHED_AT.toISOString(), instanceType: 'g5.xlarge', spot: true },
      { instanceId: 'i-2', runId: 'run-b', attempt: 0, state: 'stopped', launchedAt: LAUNCHED_AT.toISOString(), instanceType: 'g5.xlarge', spot: false },
    ]);
    const calls = ec2Mock.commandCalls(DescribeInstancesCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1]?.args[0].input.NextToken).toBe('page-2');
    expect(calls[0]?.args[0].input.Filters).toEqual([
      { Name: 'tag-key', Values: ['runctl:run'] },
      { Name: 'tag:runctl:stack', Values: [TEST_STACK] },
      { Name: 'instance-state-name', Values: ['pending', 'running', 'shutting-down', 'stopping', 'stopped'] },
    ]);
  });
});

describe('launchTags', () => {
  it('tags a launch with its run, attempt and stack, after the request tags, so none of them can be posed', () => {
    const tags = launchTags({ runId: 'run-7f3a', attempt: 2, tags: { team: 'vision', 'runctl:stack': 'runctl-prod', 'runctl:helper': 'build-image' } }, 'runctl-dev');

    expect(tags).toEqual([
      { Key: 'Name', Value: 'runctl-run-7f3a-2' },
      { Key: 'team', Value: 'vision' },
      { Key: 'runctl:stack', Value: 'runctl-dev' },
      { Key: 'runctl:helper', Value: 'build-image' },
      { Key: 'runctl:run', Value: 'run-7f3a' },
      { Key: 'runctl:attempt', Value: '2' },
    ]);
  });
});
