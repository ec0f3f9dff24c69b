import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { z } from 'zod';
import { awsErrorCode, awsHttpStatus, translateAwsError } from '../adapters/aws-errors';
import { toFieldIssues } from '../domain/run-spec';
import { RunInvalidError } from '../errors';

/**
 * Code bundles are content-addressed: `bundles/<sha256>.tar.gz` in the runs bucket, so an
 * unchanged directory is uploaded once, however often it is submitted.
 */

/** Largest code bundle accepted. Code belongs in the bundle; data goes through `--data` (S3). */
export const MAX_BUNDLE_BYTES = 500 * 1024 * 1024;

/** How long a presigned upload URL stays valid. */
export const UPLOAD_URL_TTL_SECONDS = 15 * 60;

export const CreateUploadBodySchema = z.object({
  /** Hex sha256 of the .tar.gz, which names the object. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the sha256 of the .tar.gz as 64 lowercase hex digits'),
  /** Size of the .tar.gz in bytes; the upload must be exactly this long. */
  bytes: z.number().int('must be a whole number of bytes').positive('must be the size of the .tar.gz in bytes'),
});

export interface UploadDeps {
  s3: S3Client;
  runsBucket: string;
}

export interface UploadTicket {
  /** The S3 URI to put in the run spec's `code.bundle`. */
  bundle: string;
  /** True when the bundle is already stored: nothing to upload. */
  exists: boolean;
  /** Presigned PUT, only when the bundle is not stored yet. */
  uploadUrl?: string;
  /** Headers the PUT must carry (they are part of the signature). */
  uploadHeaders?: Record<string, string>;
  expiresInSeconds?: number;
}

/** The S3 key of a code bundle. */
export function bundleKey(sha256: string): string {
  return `bundles/${sha256}.tar.gz`;
}

/** Human size: 1.5 MiB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/**
 * Answers where a code bundle goes: the existing object when the hash is already stored,
 * otherwise a presigned PUT. The signature covers the length and the sha256 checksum, so S3
 * refuses a body that is larger than declared or does not hash to the name it is stored under:
 * nobody can plant other content under a hash someone else will submit.
 */
export async function createUpload(request: { body: unknown }, deps: UploadDeps): Promise<UploadTicket> {
  const parsed = CreateUploadBodySchema.safeParse(request.body ?? {});
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error);
    throw new RunInvalidError(`Invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  const { sha256, bytes } = parsed.data;
  if (bytes > MAX_BUNDLE_BYTES) {
    const message =
      `the code bundle is ${formatBytes(bytes)}, over the ${formatBytes(MAX_BUNDLE_BYTES)} limit: ` +
      'list data, checkpoints, virtual environments and build output in a .runctlignore (same syntax as .gitignore) ' +
      'and pass datasets with --data s3://bucket/prefix/:/data instead';
    throw new RunInvalidError(`Invalid request: bytes: ${message}`, [{ path: 'bytes', message }]);
  }

  const key = bundleKey(sha256);
  const bundle = `s3://${deps.runsBucket}/${key}`;
  if (await objectExists(deps, key)) return { bundle, exists: true };

  const checksum = Buffer.from(sha256, 'hex').toString('base64');
  // The checksum and If-None-Match stay signed headers (not hoisted into the query string, where
  // S3 is not known to enforce a checksum): the PUT must carry them, S3 refuses a body that does
  // not hash to the name, and an object already stored under the digest is never overwritten.
  const uploadUrl = await getSignedUrl(
    deps.s3,
    new PutObjectCommand({ Bucket: deps.runsBucket, Key: key, ContentLength: bytes, ChecksumSHA256: checksum, IfNoneMatch: '*' }),
    {
      expiresIn: UPLOAD_URL_TTL_SECONDS,
      unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
      signableHeaders: new Set(['content-length', 'if-none-match', 'x-amz-checksum-sha256']),
    },
  );
  return {
    bundle,
    exists: false,
    uploadUrl,
    uploadHeaders: { 'content-length': String(bytes), 'x-amz-checksum-sha256': checksum, 'if-none-match': '*' },
    expiresInSeconds: UPLOAD_URL_TTL_SECONDS,
  };
}

async function objectExists(deps: UploadDeps, key: string): Promise<boolean> {
  try {
    await deps.s3.send(new HeadObjectCommand({ Bucket: deps.runsBucket, Key: key }));
    return true;
  } catch (error) {
    if (awsErrorCode(error) === 'NotFound' || awsErrorCode(error) === 'NoSuchKey' || awsHttpStatus(error) === 404) return false;
    throw translateAwsError(error, `HeadObject s3://${deps.runsBucket}/${key}`);
  }
}
