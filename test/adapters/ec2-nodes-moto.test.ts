/**
 * Multi-node provisioning against moto_server: a run's node network (security group) and its
 * fleet, launched all at once, ranked and tagged, over the real EC2 wire protocol.
 *
 * moto 5.2 has no placement groups (CreatePlacementGroup answers 500) and ignores
 * Placement.GroupName on RunInstances, so the EC2 client here answers the three placement-group
 * calls from a small in-test table with EC2's own answers (Duplicate, Unknown); everything else
 * goes to moto. What the adapters send for placement groups is asserted in the mocked tests.
 */
import { randomUUID } from 'node:crypto';
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  EC2Client,
  EC2ServiceException,
  type PlacementGroup,
} from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { Ec2Compute } from '../../shared/adapters/ec2-compute';
import { Ec2NodeNetworks } from '../../shared/adapters/ec2-node-networks';
import type { LaunchNodesRequest } from '../../shared/ports/compute';
import { localClientConfig } from '../support/aws-clients';
import { TEST_STACK } from '../support/stack';

// One try per call: a moto answer is never retried into passing.
const clientConfig = () => ({ ...localClientConfig(inject('motoEndpoint')), maxAttempts: 1 });

/** Placement groups by name, as EC2 would hold them for this account and Region. */
const placementGroups = new Map<string, PlacementGroup>();

function ec2Error(code: string, message: string): EC2ServiceException {
  const error = new EC2ServiceException({ name: code, $fault: 'client', $metadata: { httpStatusCode: 400 }, message });
  return Object.assign(error, { Code: code });
}

/** Answers CreatePlacementGroup, DescribePlacementGroups (tag filters) and DeletePlacementGroup like EC2. */
function withPlacementGroups(client: EC2Client): EC2Client {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      switch (context.commandName) {
        case 'CreatePlacementGroupCommand': {
          const name = String(input.GroupName);
          if (placementGroups.has(name)) throw ec2Error('InvalidPlacementGroup.Duplicate', `The Placement Group '${name}' already exists.`);
          const specs = (input.TagSpecifications ?? []) as { Tags?: { Key?: string; Value?: string }[] }[];
          placementGroups.set(name, { GroupName: name, Strategy: 'cluster', State: 'available', Tags: specs.flatMap((s) => s.Tags ?? []) });
          return { output: { $metadata: {} }, response: {} };
        }
        case 'DescribePlacementGroupsCommand': {
          const filters = (input.Filters ?? []) as { Name: string; Values: string[] }[];
          const matches = (group: PlacementGroup) =>
            filters.every((f) =>
              f.Name === 'tag-key'
                ? (group.Tags ?? []).some((t) => f.Values.includes(t.Key ?? ''))
                : (group.Tags ?? []).some((t) => `tag:${t.Key}` === f.Name && f.Values.includes(t.Value ?? '')),
            );
          return { output: { $metadata: {}, PlacementGroups: [...placementGroups.values()].filter(matches) }, response: {} };
        }
        case 'DeletePlacementGroupCommand': {
          const name = String(input.GroupName);
          if (!placementGroups.delete(name)) throw ec2Error('InvalidPlacementGroup.Unknown', `The Placement Group '${name}' is unknown.`);
          return { output: { $metadata: {} }, response: {} };
        }
        default:
          return next(args);
      }
    },
    { step: 'initialize', name: 'placementGroupsTable' },
  );
  return client;
}

const ec2 = withPlacementGroups(new EC2Client(clientConfig()));
const ssm = new SSMClient(clientConfig());
const noRetry = { attempts: 1, baseMs: 1 };
const compute = new Ec2Compute({ ec2, ssm, stack: TEST_STACK, throttleRetry: noRetry });
const networks = new Ec2NodeNetworks({ ec2, stack: TEST_STACK, throttleRetry: noRetry, releaseRetry: { attempts: 1, baseMs: 1 } });

let ami = '';

function nodesRequest(overrides: Partial<LaunchNodesRequest> = {}): LaunchNodesRequest {
  return {
    runId: `run-${randomUUID().slice(0, 8)}`,
    attempt: 1,
    count: 3,
    instanceTypes: ['g5.12xlarge'],
    subnets: [],
    spot: true,
    onDemandFallback: false,
    ami,
    rootVolumeGiB: 100,
    tags: { team: 'vision' },
    ...overrides,
  };
}

async function describeGroup(groupId: string) {
  const output = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] }));
  return output.SecurityGroups?.[0];
}

async function instancesOf(runId: string) {
  const output = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:runctl:run', Values: [runId] }] }));
  return (output.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

beforeAll(async () => {
  const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
  ami = images.Images?.find((i) => i.RootDeviceName !== undefined && i.Architecture === 'x86_64')?.ImageId ?? '';
  expect(ami).toMatch(/^ami-/);
});

describe('Ec2NodeNetworks on moto_server', () => {
  it("creates the run's security group in the default VPC: every TCP port from and to itself, nothing else, tagged", async () => {
    const runId = `run-${randomUUID().slice(0, 8)}`;

    const network = await networks.ensure(runId, { subnets: [], instanceType: 'g5.12xlarge' });

    expect(network.placementGroup).toBe(`${TEST_STACK}-${runId}`);
    expect(network.securityGroupId).toMatch(/^sg-/);
    const group = await describeGroup(network.securityGroupId ?? '');
    expect(group?.GroupName).toBe(`${TEST_STACK}-${runId}`);
    expect(group?.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'runctl:run', Value: runId },
        { Key: 'runctl:stack', Value: TEST_STACK },
      ]),
    );
    const self = { IpProtocol: 'tcp', FromPort: 0, ToPort: 65535, UserIdGroupPairs: [expect.objectContaining({ GroupId: network.securityGroupId })] };
    expect(group?.IpPermissions).toEqual([expect.objectContaining(self)]);
    // EC2's allow-all egress of a new group is gone: the stack's training group decides what else goes out.
    expect(group?.IpPermissionsEgress).toEqual([expect.objectContaining(self)]);
    expect(placementGroups.get(network.placementGroup ?? '')?.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'runctl:run', Value: runId },
        { Key: 'runctl:stack', Value: TEST_STACK },
      ]),
    );
    await networks.release(runId);
  });

  it('finds what an earlier call created, in the VPC of the subnets it is given', async () => {
    const runId = `run-${randomUUID().slice(0, 8)}`;
    const subnets = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }));
    const subnet = subnets.Subnets?.[0];

    const first = await networks.ensure(runId, { subnets: [subnet?.SubnetId ?? ''], instanceType: 'c5n.18xlarge' });
    const second = await networks.ensure(runId, { subnets: [subnet?.SubnetId ?? ''], instanceType: 'c5n.18xlarge' });

    expect(second).toEqual(first);
    expect((await describeGroup(first.securityGroupId ?? ''))?.VpcId).toBe(subnet?.VpcId);
    const named = await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [`${TEST_STACK}-${runId}`] }] }));
    expect(named.SecurityGroups).toHaveLength(1);
    expect((await describeGroup(first.securityGroupId ?? ''))?.IpPermissions).toHaveLength(1);
    await networks.release(runId);
  });

  it('makes no placement group for a burstable type', async () => {
    const runId = `run-${randomUUID().slice(0, 8)}`;
    const network = await networks.ensure(runId, { subnets: [], instanceType: 't3.large' });
    expect(network.placementGroup).toBeUndefined();
    expect(placementGroups.has(`${TEST_STACK}-${runId}`)).toBe(false);
    await networks.release(runId);
  });

  it("lists this stack's run networks until they are released; releasing twice is fine", async () => {
    const runId = `run-${randomUUID().slice(0, 8)}`;
    const other = new Ec2NodeNetworks({ ec2, stack: 'runctl-prod', throttleRetry: noRetry });
    const theirRun = `run-${randomUUID().slice(0, 8)}`;
    const mine = await networks.ensure(runId, { subnets: [], instanceType: 'g5.12xlarge' });
    await other.ensure(theirRun, { subnets: [], instanceType: 'g5.12xlarge' });

    const listed = await networks.listRunNetworks();
    expect(listed).toContain(runId);
    expect(listed).not.toContain(theirRun);
    expect(await other.listRunNetworks()).toContain(theirRun);

    await networks.release(runId);
    await networks.release(runId);

    expect(await networks.listRunNetworks()).not.toContain(runId);
    await expect(describeGroup(mine.securityGroupId ?? '')).rejects.toMatchObject({ name: 'InvalidGroup.NotFound' });
    expect(placementGroups.has(`${TEST_STACK}-${runId}`)).toBe(false);
    // Another stack's network of its own run is untouched by this stack's release.
    await networks.release(theirRun);
    expect(await other.listRunNetworks()).toContain(theirRun);
    await other.release(theirRun);
  });
});

describe('Ec2Compute.launchNodes on moto_server', () => {
  it('launches the whole fleet in one subnet and network, ranked by launch index and tagged with the rank', async () => {
    const request = nodesRequest();
    const network = await networks.ensure(request.runId, { subnets: [], instanceType: 'g5.12xlarge' });

    const nodes = await compute.launchNodes({ ...request, network });

    expect(nodes.map((n) => n.rank)).toEqual([0, 1, 2]);
    expect(new Set(nodes.map((n) => n.subnetId)).size).toBe(1);
    expect(new Set(nodes.map((n) => n.privateIp)).size).toBe(3);
    for (const node of nodes) expect(node.privateIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const described = await instancesOf(request.runId);
    expect(described).toHaveLength(3);
    for (const node of nodes) {
      const instance = described.find((i) => i.InstanceId === node.instanceId);
      expect(instance?.AmiLaunchIndex).toBe(node.rank);
      expect(instance?.PrivateIpAddress).toBe(node.privateIp);
      expect(instance?.Tags).toEqual(
        expect.arrayContaining([
          { Key: 'runctl:rank', Value: String(node.rank) },
          { Key: 'runctl:run', Value: request.runId },
          { Key: 'runctl:stack', Value: TEST_STACK },
        ]),
      );
      expect(instance?.SecurityGroups?.map((g) => g.GroupId)).toContain(network.securityGroupId);
    }
    const listed = (await compute.listTaggedInstances()).filter((i) => i.runId === request.runId);
    expect(listed.map((i) => i.rank).sort()).toEqual([0, 1, 2]);

    await Promise.all(nodes.map((n) => compute.terminate(n.instanceId)));
    await networks.release(request.runId);
  });

  it('a retried call returns the same fleet in the same order and launches nothing', async () => {
    const request = nodesRequest({ count: 2 });
    const first = await compute.launchNodes(request);
    const second = await compute.launchNodes(request);
    expect(second.map((n) => [n.instanceId, n.rank])).toEqual(first.map((n) => [n.instanceId, n.rank]));
    expect(await instancesOf(request.runId)).toHaveLength(2);
    await Promise.all(first.map((n) => compute.terminate(n.instanceId)));
  });

  it("replaces one rank in its fleet's subnet, adopting on retry only the instance of that rank", async () => {
    const request = nodesRequest({ count: 2 });
    const fleet = await compute.launchNodes(request);
    const lost = fleet[1];
    await compute.terminate(lost?.instanceId ?? '');
    const subnets = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }));
    // The fleet's subnet, whatever order the run's subnet list has.
    const others = (subnets.Subnets ?? []).map((s) => s.SubnetId ?? '').filter((s) => s !== lost?.subnetId);
    const { count: _count, ...single } = request;

    const replacement = await compute.launch({ ...single, rank: 1, subnets: others, subnetId: lost?.subnetId });
    const again = await compute.launch({ ...single, rank: 1, subnets: others, subnetId: lost?.subnetId });

    expect(replacement.instanceId).not.toBe(fleet[0]?.instanceId);
    expect(replacement.instanceId).not.toBe(lost?.instanceId);
    expect(replacement).toMatchObject({ rank: 1, subnetId: lost?.subnetId });
    expect(again.instanceId).toBe(replacement.instanceId);
    const tags = (await instancesOf(request.runId)).find((i) => i.InstanceId === replacement.instanceId)?.Tags;
    expect(tags).toContainEqual({ Key: 'runctl:rank', Value: '1' });
    await Promise.all([fleet[0], replacement].map((n) => compute.terminate(n?.instanceId ?? '')));
  });
});
