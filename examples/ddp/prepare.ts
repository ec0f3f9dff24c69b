import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { uploadBundle } from '../bundle';

/**
 * Puts the DDP example where a run can reach it on the local backend: its code bundle,
 * content-addressed as `runctl submit` uploads it. The script makes its own data (two noisy
 * rings, each rank its shard), so there is no dataset to upload.
 */

export const DDP_EXAMPLE_DIR = dirname(fileURLToPath(import.meta.url));

/** Uploads the bundle (skipped when that content is already there); returns its S3 URI. */
export function prepareDdpExample(s3: S3Client, bucket: string): Promise<string> {
  return uploadBundle(s3, bucket, DDP_EXAMPLE_DIR);
}

/** The spec of an N-node DDP run of the example: torchrun on every node, one process each, spot. */
export function ddpSpec(bundle: string, nodes: number, hyperparameters: Record<string, string | number | boolean>): Record<string, unknown> {
  return {
    name: 'ddp-rings',
    code: { bundle, entrypoint: 'train.py' },
    hyperparameters,
    nodes,
    distributed: { launcher: 'torchrun', nprocPerNode: 1 },
    instance: { types: ['c7i.large'], spot: true },
    // Short intervals: a local epoch takes a second, not an hour.
    checkpoint: { intervalSeconds: 5, graceSeconds: 20 },
  };
}
