/**
 * AMI resolution: which image an attempt boots, and the root device name its block device
 * mapping must name to resize the root volume.
 */
import { DescribeImagesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { z } from 'zod';
import { AwsCallFailedError } from '../errors';
import { awsErrorCode, translateAwsError } from './aws-errors';

/**
 * Public SSM parameter of the Deep Learning OSS Nvidia Driver AMI GPU PyTorch (Ubuntu 22.04):
 * drivers, CUDA, PyTorch in /opt/pytorch, docker, the AWS CLI and the SSM agent. AWS retires
 * the versioned PyTorch lines over time (GetParameter then answers ParameterNotFound), so this
 * is a pin to revisit, overridable per deployment with the adapter's `amiParameter` option.
 */
export const DEFAULT_DLAMI_PARAMETER =
  '/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.7-ubuntu-22.04/latest/ami-id';

/** The framework-free base DLAMI (drivers, CUDA, docker): for runs that bring a container image. */
export const BASE_DLAMI_PARAMETER =
  '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id';

const AmiId = z.string().regex(/^ami-[0-9a-f]+$/, 'is not an AMI id');

/** Reads an AMI id from an SSM parameter; a missing or malformed parameter is Aws.CallFailed. */
export async function resolveAmiFromParameter(ssm: SSMClient, parameterName: string): Promise<string> {
  let value: string | undefined;
  try {
    const output = await ssm.send(new GetParameterCommand({ Name: parameterName }));
    value = output.Parameter?.Value;
  } catch (error) {
    if (awsErrorCode(error) === 'ParameterNotFound') {
      throw new AwsCallFailedError(
        `The AMI parameter ${parameterName} does not exist in this region (AWS may have retired that ` +
          'DLAMI line): give the run an explicit AMI or configure another AMI parameter',
        { cause: error },
      );
    }
    throw translateAwsError(error, `GetParameter ${parameterName}`);
  }
  const parsed = AmiId.safeParse(value);
  if (!parsed.success) {
    throw new AwsCallFailedError(`The AMI parameter ${parameterName} holds ${JSON.stringify(value)}, which is not an AMI id`);
  }
  return parsed.data;
}

/** Root device name of an AMI (e.g. /dev/sda1), needed to size the root volume at launch. */
export async function amiRootDeviceName(ec2: EC2Client, imageId: string): Promise<string> {
  let image;
  try {
    const output = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    image = output.Images?.[0];
  } catch (error) {
    const code = awsErrorCode(error);
    if (code === 'InvalidAMIID.NotFound' || code === 'InvalidAMIID.Malformed' || code === 'InvalidAMIID.Unavailable') {
      throw new AwsCallFailedError(`AMI ${imageId} cannot be used in this region (${code})`, { cause: error });
    }
    throw translateAwsError(error, `DescribeImages ${imageId}`);
  }
  if (image === undefined) {
    throw new AwsCallFailedError(`AMI ${imageId} was not found in this region or is not shared with this account`);
  }
  if (image.RootDeviceName === undefined || image.RootDeviceName === '') {
    throw new AwsCallFailedError(`AMI ${imageId} does not declare a root device name`);
  }
  return image.RootDeviceName;
}
