import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { packDirectory } from '../../cli/pack';
import { bundleKey } from '../../shared/usecases/uploads';

/**
 * Puts the DDP example where a run can reach it on the local backend: its code bundle,
 * content-addressed as `runctl submit` uploads it. The script makes its own data (two noisy
 * rings, each rank its shard), so there is no dataset to upload.
 */

export const DDP_EXAMPLE_DIR = dirname(fileURLToPath(import.meta.url));

/** Uploads the bundle (skipped when that content is already there); returns its S3 URI. */
export async function prepareDdpExample(s3: S3Client, bucket: string): Promise<string> {
  const packed = await packDirectory(DDP_EXAMPLE_DIR);
  try {
    const key = bundleKey(packed.sha256);
    const there = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
      () => true,
      () => false,
    );
    // A buffer, not a stream: a streamed body goes out aws-chunked, which s3rver stores with its framing.
    if (!there) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(packed.file) }));
    return `s3://${bucket}/${key}`;
  } finally {
    await rm(dirname(packed.file), { recursive: true, force: true });
  }
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
