import { DescribeTagsCommand, type EC2Client, type TagDescription } from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { NODES_TAG, type InstanceRun, type InstanceTags } from '../ports/instance-tags';
import { STACK_TAG } from '../ports/stack-tag';
import { translateAwsError } from './aws-errors';
import { ATTEMPT_TAG, RUN_TAG } from './ec2-compute';

/** Tag that names the run's owner on its instances (see InstanceRun.owner). */
export const OWNER_TAG = 'runctl:owner';

const RunIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/);
const AttemptSchema = z.coerce.number().int().positive();

/** InstanceTags through EC2 DescribeTags: one request, filtered to the instance and runctl's keys. */
export class Ec2InstanceTags implements InstanceTags {
  /** `stack`: this stack's name; an instance of another stack (EC2 events reach every stack in the region) is not ours. */
  constructor(
    private readonly ec2: EC2Client,
    private readonly stack: string,
  ) {}

  /**
   * Tags of a terminated instance stay readable for about an hour, long enough for the state
   * change events of its shutdown. An instance without a well-formed run tag, or launched by
   * another stack, is not this stack's.
   */
  async runOf(instanceId: string): Promise<InstanceRun | undefined> {
    let tags: TagDescription[];
    try {
      const output = await this.ec2.send(
        new DescribeTagsCommand({
          Filters: [
            { Name: 'resource-id', Values: [instanceId] },
            { Name: 'key', Values: [RUN_TAG, ATTEMPT_TAG, OWNER_TAG, STACK_TAG, NODES_TAG] },
          ],
        }),
      );
      tags = output.Tags ?? [];
    } catch (error) {
      throw translateAwsError(error, `DescribeTags of ${instanceId}`);
    }
    const value = (key: string) => tags.find((t) => t.ResourceId === instanceId && t.Key === key)?.Value;
    const runId = RunIdSchema.safeParse(value(RUN_TAG));
    const attempt = AttemptSchema.safeParse(value(ATTEMPT_TAG));
    if (!runId.success || !attempt.success || value(STACK_TAG) !== this.stack) return undefined;
    const owner = value(OWNER_TAG);
    const nodes = AttemptSchema.safeParse(value(NODES_TAG));
    return {
      runId: runId.data,
      attempt: attempt.data,
      owner: owner === undefined || owner === '' ? undefined : owner,
      ...(nodes.success && nodes.data > 1 ? { nodes: nodes.data } : {}),
    };
  }
}
