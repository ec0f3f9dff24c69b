/**
 * Artifacts on S3: the run's bucket, one prefix per run (`runs/<runId>/…`). The agent writes a
 * checkpoint's files first, then its `_COMPLETE.json`, then `checkpoints/latest.json`, so a
 * pointer whose marker is missing is treated as not there and the newest complete one wins.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { PrecheckFailedError } from '../errors';
import type { Artifacts, CheckpointInfo, OutputFile, OutputsManifest } from '../ports/artifacts';
import { runPrefix } from '../ports/artifacts';
import { awsErrorCode, awsHttpStatus, translateAwsError } from './aws-errors';

const COMPLETE_MARKER = '_COMPLETE.json';
const OUTPUTS_MANIFEST = '_manifest.json';

const LatestPointerSchema = z.object({
  uri: z.string().startsWith('s3://'),
  attempt: z.number().int().min(1),
  seq: z.number().int().min(0).optional(),
  /** The training step and epoch the script last reported before the snapshot. */
  step: z.number().optional(),
  epoch: z.number().optional(),
  createdAt: z.string(),
  files: z.number().int().min(0).optional(),
  bytes: z.number().min(0).optional(),
});

const MetricsLineSchema = z.record(z.string(), z.unknown());

const ManifestSchema = z.object({
  uri: z.string(),
  attempt: z.number().int().min(1),
  files: z.array(z.object({ key: z.string(), bytes: z.number() })),
  bytes: z.number().min(0),
});

/** `s3://bucket/some/key` → { bucket, key }. */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match?.[1]) throw new PrecheckFailedError(`Not an S3 URI: ${uri}`);
  return { bucket: match[1], key: match[2] ?? '' };
}

function isNotFound(error: unknown): boolean {
  const code = awsErrorCode(error);
  return code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchBucket' || awsHttpStatus(error) === 404;
}

/** Checkpoint ids are `<attempt>-<seq>` (zero-padded), e.g. `0002-000007`. */
function attemptOfId(id: string): number {
  const attempt = Number(id.split('-')[0]);
  return Number.isInteger(attempt) && attempt > 0 ? attempt : 1;
}

export class S3Artifacts implements Artifacts {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async objectExists(uri: string): Promise<boolean> {
    const { bucket, key } = parseS3Uri(uri);
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      // Without s3:ListBucket, S3 answers 403 for a missing key as well: either way it cannot be read.
      if (awsHttpStatus(error) === 403) throw new PrecheckFailedError(`Access to ${uri} is denied`, { cause: error });
      throw translateAwsError(error, `HeadObject ${uri}`);
    }
  }

  async latestCheckpoint(runId: string): Promise<CheckpointInfo | undefined> {
    const prefix = this.checkpointsPrefix(runId);
    const text = await this.readText(`${prefix}latest.json`);
    if (text !== undefined) {
      const pointer = LatestPointerSchema.safeParse(safeJson(text));
      const base = `s3://${this.bucket}/${prefix}`;
      // Only a pointer into this run's own checkpoints is followed.
      if (pointer.success && pointer.data.uri.startsWith(base)) {
        const uri = pointer.data.uri.endsWith('/') ? pointer.data.uri : `${pointer.data.uri}/`;
        if (await this.objectExists(`${uri}${COMPLETE_MARKER}`)) {
          const id = uri.slice(base.length, -1);
          return {
            id,
            uri,
            attempt: pointer.data.attempt,
            createdAt: pointer.data.createdAt,
            step: pointer.data.step,
            epoch: pointer.data.epoch,
            files: pointer.data.files,
            bytes: pointer.data.bytes,
          };
        }
      }
    }
    // No pointer, or one to a checkpoint without its marker: the newest complete one, if any.
    const all = await this.listCheckpoints(runId);
    return all.at(-1);
  }

  async listCheckpoints(runId: string): Promise<CheckpointInfo[]> {
    const prefix = this.checkpointsPrefix(runId);
    const found: CheckpointInfo[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(`ListObjectsV2 ${prefix}`, () =>
        this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token })),
      );
      for (const object of page.Contents ?? []) {
        const key = object.Key ?? '';
        const rest = key.slice(prefix.length);
        const [id, file, ...deeper] = rest.split('/');
        if (!id || file !== COMPLETE_MARKER || deeper.length > 0) continue;
        found.push({
          id,
          uri: `s3://${this.bucket}/${prefix}${id}/`,
          attempt: attemptOfId(id),
          createdAt: (object.LastModified ?? new Date(0)).toISOString(),
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return found.sort((a, b) => a.id.localeCompare(b.id));
  }

  async outputsManifest(runId: string): Promise<(OutputsManifest & { manifestUri: string }) | undefined> {
    const key = `${runPrefix(runId)}/outputs/_manifest.json`;
    const text = await this.readText(key);
    if (text === undefined) return undefined;
    const manifest = ManifestSchema.safeParse(safeJson(text));
    if (!manifest.success) return undefined;
    return {
      manifestUri: `s3://${this.bucket}/${key}`,
      uri: manifest.data.uri,
      attempt: manifest.data.attempt,
      files: manifest.data.files.length,
      bytes: manifest.data.bytes,
    };
  }

  /**
   * One page of the run's output files in key order (`limit` at most, after the path `after`),
   * the outputs manifest left out; `last` is the path to continue after when more remain.
   */
  async listOutputs(runId: string, page: { limit: number; after?: string }): Promise<{ files: OutputFile[]; last?: string }> {
    const prefix = `${runPrefix(runId)}/outputs/`;
    const files: OutputFile[] = [];
    let startAfter = page.after === undefined ? undefined : `${prefix}${page.after}`;
    for (;;) {
      const listed = await this.call(`ListObjectsV2 ${prefix}`, () =>
        this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, StartAfter: startAfter })),
      );
      for (const object of listed.Contents ?? []) {
        const key = object.Key ?? '';
        startAfter = key;
        const path = key.slice(prefix.length);
        if (path === '' || path === OUTPUTS_MANIFEST || path.endsWith('/')) continue;
        if (files.length === page.limit) return { files, last: files.at(-1)?.path };
        files.push({ path, size: object.Size ?? 0, lastModified: (object.LastModified ?? new Date(0)).toISOString() });
      }
      if (!listed.IsTruncated) return { files };
    }
  }

  async readMetrics(runId: string): Promise<Array<Record<string, unknown>>> {
    const text = await this.readText(`${runPrefix(runId)}/metrics.jsonl`);
    if (text === undefined) return [];
    const lines: Array<Record<string, unknown>> = [];
    for (const line of text.split('\n')) {
      const parsed = MetricsLineSchema.safeParse(safeJson(line));
      if (parsed.success) lines.push(parsed.data);
    }
    return lines;
  }

  private checkpointsPrefix(runId: string): string {
    return `${runPrefix(runId)}/checkpoints/`;
  }

  private async readText(key: string): Promise<string | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return object.Body ? await object.Body.transformToString() : '';
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw translateAwsError(error, `GetObject s3://${this.bucket}/${key}`);
    }
  }

  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw translateAwsError(error, operation);
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
