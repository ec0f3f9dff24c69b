import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { AWS_CLIENT_RETRY_CONFIG } from '../adapters/aws-errors';
import { Ec2Compute } from '../adapters/ec2-compute';
import { requireEnv } from '../config';
import type { Compute } from '../ports/compute';
import { STACK_ENV } from '../ports/stack-tag';
import { awsApiDeps, type ApiDeps } from './api';

/** Cancel also reaches the live attempt's agent through SSM. */
export type CancelApiDeps = ApiDeps & { compute: Compute };

let compute: Compute | undefined;

/**
 * The API dependencies plus compute. A module of its own so that only the cancel route's
 * bundle carries the EC2 and SSM clients.
 */
export function awsCancelApiDeps(): CancelApiDeps {
  compute ??= new Ec2Compute({
    ec2: new EC2Client(AWS_CLIENT_RETRY_CONFIG),
    ssm: new SSMClient(AWS_CLIENT_RETRY_CONFIG),
    stack: requireEnv(STACK_ENV),
  });
  return { ...awsApiDeps(), compute };
}
