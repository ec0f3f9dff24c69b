import { createHash } from 'node:crypto';
import { CopyObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import { runPrefix } from '../ports/artifacts';
import type { ModelBlobs } from '../ports/models';
import { awsErrorCode, awsHttpStatus, translateAwsError } from './aws-errors';

/** Where a blob of `sha256` lives: never under `runs/`, so expiring or deleting a run cannot touch it. */
export function blobKey(sha256: string): string {
  return `models/blobs/sha256/${sha256}`;
}

const OUTPUTS_MANIFEST = '_manifest.json';
const DOWNLOAD_URL_SECONDS = 900;

/** Model blobs in the runs bucket. */
export class S3ModelBlobs implements ModelBlobs {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async listOutputs(runId: string): Promise<Array<{ path: string; key: string; size: number }>> {
    const prefix = `${runPrefix(runId)}/outputs/`;
    const found: Array<{ path: string; key: string; size: number }> = [];
    let token: string | undefined;
    do {
      const page = await this.call(`ListObjectsV2 ${prefix}`, () => this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token })));
      for (const object of page.Contents ?? []) {
        const key = object.Key ?? '';
        const path = key.slice(prefix.length);
        if (path === '' || path === OUTPUTS_MANIFEST || path.endsWith('/')) continue;
        found.push({ path, key, size: object.Size ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return found.sort((a, b) => a.path.localeCompare(b.path));
  }

  async storeContentAddressed(key: string): Promise<{ sha256: string; size: number }> {
    // Streamed through the hash, never held whole: model files can be many GB.
    const object = await this.call(`GetObject ${key}`, () => this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })));
    const hash = createHash('sha256');
    let size = 0;
    const body = object.Body;
    if (body instanceof Readable) {
      for await (const chunk of body) {
        const bytes: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        hash.update(bytes);
        size += bytes.length;
      }
    }
    const sha256 = hash.digest('hex');
    if (!(await this.exists(blobKey(sha256)))) {
      // A server-side copy: the bytes never leave S3.
      await this.call(`CopyObject ${key}`, () =>
        this.s3.send(new CopyObjectCommand({ Bucket: this.bucket, Key: blobKey(sha256), CopySource: `${this.bucket}/${encodeURIComponent(key).replaceAll('%2F', '/')}` })),
      );
    }
    return { sha256, size };
  }

  async downloadUrl(sha256: string): Promise<string> {
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.bucket, Key: blobKey(sha256) }), { expiresIn: DOWNLOAD_URL_SECONDS });
  }

  private async exists(key: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (error) {
      if (awsErrorCode(error) === 'NotFound' || awsHttpStatus(error) === 404) return false;
      throw translateAwsError(error, `HeadObject ${key}`);
    }
  }

  private async call<T>(what: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw translateAwsError(error, what);
    }
  }
}
