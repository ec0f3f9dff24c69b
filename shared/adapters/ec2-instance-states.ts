import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { AwsCallFailedError } from '../errors';
import type { Compute, InstanceLifecycleState } from '../ports/compute';
import { translateAwsError, withThrottleRetry, type ThrottleRetryOptions } from './aws-errors';

const InstanceState = z.enum(['pending', 'running', 'shutting-down', 'terminated', 'stopping', 'stopped']);

/** An EC2 state name as the port's lifecycle state; one EC2 has not documented is an error. */
export function parseState(name: string): InstanceLifecycleState {
  const parsed = InstanceState.safeParse(name);
  if (!parsed.success) throw new AwsCallFailedError(`EC2 reported an unknown instance state ${name}`);
  return parsed.data;
}

/**
 * The lifecycle state of several instances in one DescribeInstances (Ec2Compute's, and the agent
 * routes' own: they need nothing else of EC2). An instance filter rather than `InstanceIds`: one
 * id EC2 no longer knows would fail the whole call, where it should read `gone`.
 */
export class Ec2InstanceStates implements Pick<Compute, 'instanceStates'> {
  constructor(
    private readonly ec2: EC2Client,
    private readonly retry: ThrottleRetryOptions = { attempts: 3, baseMs: 250 },
  ) {}

  async instanceStates(instanceIds: readonly string[]): Promise<Map<string, InstanceLifecycleState>> {
    const states = new Map<string, InstanceLifecycleState>(instanceIds.map((id) => [id, 'gone']));
    if (instanceIds.length === 0) return states;
    let output;
    try {
      output = await withThrottleRetry(() => this.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: [...instanceIds] }] })), this.retry);
    } catch (error) {
      throw translateAwsError(error, 'DescribeInstances');
    }
    for (const instance of (output.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      if (instance.InstanceId !== undefined && states.has(instance.InstanceId)) states.set(instance.InstanceId, parseState(instance.State?.Name ?? 'terminated'));
    }
    return states;
  }
}
