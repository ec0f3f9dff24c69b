/**
 * The EC2 compute adapter against moto_server: the real EC2 and SSM wire protocols.
 * moto does not implement SSM DescribeInstanceInformation, so agent readiness is covered by the
 * mocked tests; moto also records RunInstances client tokens without de-duplicating on them, so
 * a repeated launch is kept to one instance here by the adapter's adoption of the tagged attempt.
 */
import { randomUUID } from 'node:crypto';
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  EC2Client,
  RunInstancesCommand,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { Ec2Compute } from '../../shared/adapters/ec2-compute';
import type { LaunchRequest } from '../../shared/ports/compute';
import { localClientConfig } from '../support/aws-clients';
import { TEST_STACK } from '../support/stack';

// One try per call: a moto answer is never retried into passing.
const clientConfig = () => ({ ...localClientConfig(inject('motoEndpoint')), maxAttempts: 1 });

const ec2 = new EC2Client(clientConfig());
const ssm = new SSMClient(clientConfig());
const compute = new Ec2Compute({ ec2, ssm, stack: TEST_STACK, throttleRetry: { attempts: 1, baseMs: 1 } });

let ami = '';

function request(overrides: Partial<LaunchRequest> = {}): LaunchRequest {
  return {
    runId: `run-${randomUUID().slice(0, 8)}`,
    attempt: 1,
    instanceTypes: ['g5.xlarge'],
    subnets: [],
    spot: true,
    onDemandFallback: false,
    ami,
    rootVolumeGiB: 100,
    tags: { team: 'vision' },
    ...overrides,
  };
}

async function describe1(instanceId: string) {
  const output = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  return output.Reservations?.[0]?.Instances?.[0];
}

beforeAll(async () => {
  const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
  const image = images.Images?.find((i) => i.RootDeviceName !== undefined && i.Architecture === 'x86_64');
  ami = image?.ImageId ?? '';
  expect(ami).toMatch(/^ami-/);
});

describe('Ec2Compute on moto_server', () => {
  it('launches a tagged instance in a default VPC subnet', async () => {
    const req = request();
    const launched = await compute.launch(req);

    expect(launched.instanceId).toMatch(/^i-/);
    expect(launched.instanceType).toBe('g5.xlarge');
    expect(launched.availabilityZone).toMatch(/^us-east-1[a-f]$/);
    expect(launched.subnetId).toMatch(/^subnet-/);
    const described = await describe1(launched.instanceId);
    expect(described?.ImageId).toBe(ami);
    expect(described?.SubnetId).toBe(launched.subnetId);
    expect(described?.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'runctl:run', Value: req.runId },
        { Key: 'runctl:attempt', Value: '1' },
        { Key: 'runctl:stack', Value: TEST_STACK },
        { Key: 'team', Value: 'vision' },
        { Key: 'Name', Value: `runctl-${req.runId}-1` },
      ]),
    );
    expect(described?.MetadataOptions?.HttpTokens).toBe('required');
    expect(described?.InstanceLifecycle).toBe('spot');

    const volumes = await ec2.send(
      new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [launched.instanceId] }] }),
    );
    const root = volumes.Volumes?.find((v) => v.Attachments?.[0]?.Device === described?.RootDeviceName);
    expect(root?.Size).toBe(100);
    expect(root?.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'runctl:run', Value: req.runId },
        { Key: 'runctl:stack', Value: TEST_STACK },
      ]),
    );
  });

  it("sees only its own stack's instances: another stage's launch of the same run and attempt is neither listed nor adopted", async () => {
    const other = new Ec2Compute({ ec2, ssm, stack: 'runctl-prod', throttleRetry: { attempts: 1, baseMs: 1 } });
    const req = request();
    const theirs = await other.launch(req);

    const ours = await compute.launch(req);

    expect(ours.instanceId).not.toBe(theirs.instanceId);
    expect((await compute.listTaggedInstances()).map((i) => i.instanceId)).toContain(ours.instanceId);
    expect((await compute.listTaggedInstances()).map((i) => i.instanceId)).not.toContain(theirs.instanceId);
    expect((await other.listTaggedInstances()).map((i) => i.instanceId)).toContain(theirs.instanceId);
    expect((await other.listTaggedInstances()).map((i) => i.instanceId)).not.toContain(ours.instanceId);
    await other.terminate(theirs.instanceId);
    await compute.terminate(ours.instanceId);
  });

  it('re-tags kept nodes with the attempt they now serve: the listing and the event handlers read the new attempt', async () => {
    const req = request();
    const [first, second] = await compute.launchNodes({ ...req, count: 2 });
    if (first === undefined || second === undefined) throw new Error('expected two nodes');

    await compute.tagAttempt([first.instanceId, second.instanceId], 3);
    await compute.tagAttempt([], 4);

    const listed = (await compute.listTaggedInstances()).filter((i) => i.runId === req.runId);
    expect(listed.map((i) => [i.rank, i.attempt]).sort()).toEqual([[0, 3], [1, 3]]);
    expect((await describe1(first.instanceId))?.Tags).toEqual(expect.arrayContaining([{ Key: 'runctl:attempt', Value: '3' }]));
  });

  it('launches in the pinned AZ', async () => {
    const launched = await compute.launch(request({ availabilityZone: 'us-east-1c' }));
    expect(launched.availabilityZone).toBe('us-east-1c');
  });

  it('launching the same run and attempt twice gives the same instance', async () => {
    const req = request();
    const first = await compute.launch(req);
    const second = await compute.launch(req);
    expect(second.instanceId).toBe(first.instanceId);

    const tagged = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'tag:runctl:run', Values: [req.runId] }] }),
    );
    const ids = (tagged.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId);
    expect(ids).toEqual([first.instanceId]);
  });

  it('moto stores the client token but does not de-duplicate on it (what the adoption step covers)', async () => {
    const input: RunInstancesCommandInput = {
      ImageId: ami,
      InstanceType: 't3.micro',
      MinCount: 1,
      MaxCount: 1,
      ClientToken: `tok-${randomUUID()}`,
    };
    const a = await ec2.send(new RunInstancesCommand(input));
    const b = await ec2.send(new RunInstancesCommand(input));
    expect(a.Instances?.[0]?.InstanceId).toMatch(/^i-/);
    expect(b.Instances?.[0]?.InstanceId).not.toBe(a.Instances?.[0]?.InstanceId);
  });

  it('lists tagged live instances and forgets them once terminated; terminating twice is fine', async () => {
    const req = request({ attempt: 3, spot: false });
    const launched = await compute.launch(req);

    const before = await compute.listTaggedInstances();
    expect(before.find((i) => i.instanceId === launched.instanceId)).toMatchObject({
      runId: req.runId,
      attempt: 3,
      instanceType: 'g5.xlarge',
      spot: false,
    });

    await compute.terminate(launched.instanceId);
    await compute.terminate(launched.instanceId);

    await expect(compute.readiness(launched.instanceId)).resolves.toEqual({
      state: 'terminated',
      ready: false,
      agentOnline: false,
    });
    const after = await compute.listTaggedInstances();
    expect(after.map((i) => i.instanceId)).not.toContain(launched.instanceId);
  });

  it('reads the states of several instances in one call: running, terminated, and an unknown one as gone', async () => {
    const running = await compute.launch(request({ attempt: 7, spot: false }));
    const ended = await compute.launch(request({ attempt: 8, spot: false }));
    await compute.terminate(ended.instanceId);

    const states = await compute.instanceStates([running.instanceId, ended.instanceId, 'i-0123456789abcdef0']);

    expect(Object.fromEntries(states)).toEqual({ [running.instanceId]: 'running', [ended.instanceId]: 'terminated', 'i-0123456789abcdef0': 'gone' });
    expect(await compute.instanceStates([])).toEqual(new Map());
    await compute.terminate(running.instanceId);
  });

  it('reads an unknown instance as gone, and terminating it succeeds', async () => {
    await expect(compute.readiness('i-0123456789abcdef0')).resolves.toMatchObject({ state: 'gone' });
    await expect(compute.terminate('i-0123456789abcdef0')).resolves.toBeUndefined();
  });

  it('resolves the AMI from an SSM parameter', async () => {
    const name = `/runctl/test/${randomUUID()}/ami-id`;
    await ssm.send(new PutParameterCommand({ Name: name, Type: 'String', Value: ami }));
    const withParameter = new Ec2Compute({ ec2, ssm, stack: TEST_STACK, amiParameter: name, throttleRetry: { attempts: 1, baseMs: 1 } });

    const launched = await withParameter.launch(request({ ami: undefined }));

    expect((await describe1(launched.instanceId))?.ImageId).toBe(ami);
  });

  it('fails clearly when the AMI parameter does not exist', async () => {
    const withMissing = new Ec2Compute({ ec2, ssm, stack: TEST_STACK, amiParameter: '/runctl/test/missing', throttleRetry: { attempts: 1, baseMs: 1 } });
    await expect(withMissing.launch(request({ ami: undefined }))).rejects.toMatchObject({
      name: 'Aws.CallFailed',
      message: expect.stringContaining('/runctl/test/missing'),
    });
  });

  it('sends a shell command and reads its invocation', async () => {
    const launched = await compute.launch(request());
    const commandId = await compute.sendCommand(launched.instanceId, 'echo hello', { comment: 'runctl test' });
    expect(commandId).not.toBe('');

    await expect(compute.commandResult(launched.instanceId, commandId)).resolves.toMatchObject({
      status: 'Success',
      exitCode: 0,
    });
    // An instance the command was not sent to has no invocation: read as not started yet.
    await expect(compute.commandResult('i-0123456789abcdef0', commandId)).resolves.toMatchObject({ status: 'Pending' });
  });
});
