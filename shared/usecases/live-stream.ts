import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { translateAwsError } from '../adapters/aws-errors';
import type { RunsBucketDeps } from './run-artifacts';

/**
 * A run's log (per attempt) and metrics as one stream of bytes: the consolidated object the
 * agent uploads every checkpoint interval and at the end (`logs/attempt-<n>.log`,
 * `metrics.jsonl`), continued by the live chunks its shipper PUTs within a second of the
 * print (`live/attempt-<n>/log-<offset>`, `…/metrics-<offset>`; the offset is the chunk's
 * first byte in the same stream). A reader sees the consolidated bytes, then every chunk past
 * them in offset order, up to the first gap (a chunk not stored yet: the reader waits for it
 * rather than skipping bytes).
 */

/** Widest chunk the shipper writes (1 MiB of log; its metric rows can be a few times that). */
const CHUNK_LOOKBACK_BYTES = 16 * 1024 * 1024;
/** Listing pages read per call: the chunks past the consolidated object span one checkpoint interval. */
const MAX_LIST_PAGES = 10;

interface Segment {
  key: string;
  /** First byte of the segment in the stream. */
  start: number;
  end: number;
  /** Where the segment's first byte sits in its object. */
  skip: number;
}

export interface StreamLayout {
  size: number;
  segments: Segment[];
}

/** Key of a live chunk: its stream offset zero-padded, so keys sort in stream order. */
export function liveChunkKey(prefix: string, offset: number): string {
  return `${prefix}${String(offset).padStart(12, '0')}`;
}

/** Where each byte of the stream is, from `from` on (earlier chunks are not listed). */
export async function streamLayout(
  deps: RunsBucketDeps,
  objectKey: string,
  objectSize: number,
  chunkPrefix: string,
  from: number,
): Promise<StreamLayout> {
  const segments: Segment[] = objectSize > 0 ? [{ key: objectKey, start: 0, end: objectSize, skip: 0 }] : [];
  let covered = objectSize;
  const lower = Math.max(0, Math.max(objectSize, from) - CHUNK_LOOKBACK_BYTES);
  let startAfter = lower > 0 ? liveChunkKey(chunkPrefix, lower - 1) : undefined;
  let token: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page += 1) {
    let listed;
    try {
      listed = await deps.s3.send(
        new ListObjectsV2Command({ Bucket: deps.runsBucket, Prefix: chunkPrefix, StartAfter: startAfter, ContinuationToken: token }),
      );
    } catch (error) {
      throw translateAwsError(error, `ListObjectsV2 s3://${deps.runsBucket}/${chunkPrefix}`);
    }
    for (const object of listed.Contents ?? []) {
      const offset = Number((object.Key ?? '').slice(chunkPrefix.length));
      const size = object.Size ?? 0;
      if (!Number.isSafeInteger(offset) || object.Key === undefined) continue;
      if (offset > covered) return { size: covered, segments }; // a gap: that chunk is not stored yet
      if (offset + size <= covered) continue;
      segments.push({ key: object.Key, start: covered, end: offset + size, skip: covered - offset });
      covered = offset + size;
    }
    token = listed.NextContinuationToken;
    startAfter = undefined;
    if (token === undefined) break;
  }
  return { size: covered, segments };
}

/** Bytes [start, end) of the stream, read from the objects that hold them. */
export async function readStream(
  layout: StreamLayout,
  start: number,
  end: number,
  readRange: (key: string, from: number, to: number) => Promise<Buffer>,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const segment of layout.segments) {
    const from = Math.max(start, segment.start);
    const to = Math.min(end, segment.end);
    if (from >= to) continue;
    parts.push(await readRange(segment.key, segment.skip + (from - segment.start), segment.skip + (to - segment.start)));
  }
  return Buffer.concat(parts);
}
