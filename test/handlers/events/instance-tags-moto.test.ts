import { CreateTagsCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, inject, it } from 'vitest';
import { Ec2InstanceTags, OWNER_TAG } from '../../../shared/adapters/ec2-instance-tags';
import { STACK_TAG } from '../../../shared/ports/stack-tag';
import { localClientConfig } from '../../support/aws-clients';
import { TEST_STACK } from '../../support/stack';

/** The tags lookup of the event handlers against moto_server's EC2 DescribeTags. */
describe('Ec2InstanceTags on moto', () => {
  const ec2 = new EC2Client(localClientConfig(inject('motoEndpoint')));
  const tags = new Ec2InstanceTags(ec2, TEST_STACK);

  async function launch(instanceTags: Record<string, string>): Promise<string> {
    const out = await ec2.send(new RunInstancesCommand({ ImageId: 'ami-12c6146b', InstanceType: 't3.micro', MinCount: 1, MaxCount: 1 }));
    const instanceId = out.Instances?.[0]?.InstanceId;
    if (instanceId === undefined) throw new Error('moto launched no instance');
    const entries = Object.entries(instanceTags).map(([Key, Value]) => ({ Key, Value }));
    if (entries.length > 0) await ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: entries }));
    return instanceId;
  }

  it('reads the run, attempt and owner of an instance runctl launched', async () => {
    const owner = 'arn:aws:sts::123456789012:assumed-role/ml-engineer/alice';
    const instanceId = await launch({ 'runctl:run': 'r-0123abcd', 'runctl:attempt': '3', [STACK_TAG]: TEST_STACK, [OWNER_TAG]: owner, team: 'vision' });
    await launch({ 'runctl:run': 'r-other', 'runctl:attempt': '1', [STACK_TAG]: TEST_STACK });

    expect(await tags.runOf(instanceId)).toEqual({ runId: 'r-0123abcd', attempt: 3, owner });
  });

  it('leaves the owner out when the instance has no owner tag', async () => {
    const instanceId = await launch({ 'runctl:run': 'r-noowner', 'runctl:attempt': '1', [STACK_TAG]: TEST_STACK });

    expect(await tags.runOf(instanceId)).toEqual({ runId: 'r-noowner', attempt: 1, owner: undefined });
  });

  it.each([
    ['no tags', {}],
    ['a run tag without an attempt', { 'runctl:run': 'r-half', [STACK_TAG]: TEST_STACK }],
    ['an unreadable attempt', { 'runctl:run': 'r-bad', 'runctl:attempt': 'two', [STACK_TAG]: TEST_STACK }],
    ['no stack tag', { 'runctl:run': 'r-nostack', 'runctl:attempt': '1' }],
    ["another stack's tag", { 'runctl:run': 'r-prod', 'runctl:attempt': '1', [STACK_TAG]: 'runctl-prod' }],
  ])('says an instance with %s is not this stack’s', async (_label, instanceTags) => {
    const instanceId = await launch(instanceTags);

    expect(await tags.runOf(instanceId)).toBeUndefined();
  });
});
