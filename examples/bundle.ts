import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { packDirectory } from '../cli/pack';
import { bundleKey } from '../shared/usecases/uploads';

/**
 * Packs a code directory and puts it in the local runs bucket content-addressed, as `runctl
 * submit` uploads it (skipped when that content is already there). Returns its S3 URI.
 */
export async function uploadBundle(s3: S3Client, bucket: string, dir: string): Promise<string> {
  const packed = await packDirectory(dir);
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
