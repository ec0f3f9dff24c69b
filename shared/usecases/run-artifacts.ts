import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { nodeLogKey } from '../agent/node';
import { MAX_NODES, nodeCount } from '../domain/multi-node';
import { awsErrorCode, awsHttpStatus, translateAwsError } from '../adapters/aws-errors';
import { S3Artifacts } from '../adapters/s3-artifacts';
import type { RunRecord } from '../domain/run-record';
import { toFieldIssues } from '../domain/run-spec';
import { NotFoundError, RunInvalidError } from '../errors';
import type { CheckpointInfo } from '../ports/artifacts';
import { runPrefix } from '../ports/artifacts';
import type { RunStore } from '../ports/run-store';
import { readStream, streamLayout } from './live-stream';
import { getOwnedRun } from './query-runs';

/**
 * What the API reads back of a run's S3 prefix: the log of an attempt (a byte range or the
 * tail, so `runctl logs -f` can poll), the metrics lines (paginated) and the checkpoints.
 */

/** The runs bucket, as the artifact routes need it. */
export interface RunsBucketDeps {
  s3: S3Client;
  runsBucket: string;
}

export type ArtifactReadDeps = RunsBucketDeps & { store: RunStore };

/** Most bytes one logs call returns: far below the 6 MB Lambda response limit, after JSON escaping. */
export const MAX_LOG_RANGE_BYTES = 1024 * 1024;
const DEFAULT_LOG_RANGE_BYTES = 256 * 1024;
const DEFAULT_TAIL_LINES = 200;
/** Bytes read from the end of a log to find the last N lines; long lines may yield fewer. */
const TAIL_WINDOW_BYTES = 512 * 1024;

const count = (min: number, max: number) =>
  z.coerce.number().int(`must be a whole number between ${min} and ${max}`).min(min, `must be between ${min} and ${max}`).max(max, `must be between ${min} and ${max}`);

export const LogsQuerySchema = z
  .object({
    attempt: count(1, 10_000).optional(),
    offset: z.coerce.number().int('must be a byte offset (a whole number ≥ 0)').min(0, 'must be a byte offset (a whole number ≥ 0)').optional(),
    length: count(1, MAX_LOG_RANGE_BYTES).optional(),
    tail: count(1, 10_000).optional(),
    /** A node of a multi-node run: its own log (rank 0's is the default). */
    node: count(0, MAX_NODES - 1).optional(),
  })
  .refine((q) => q.offset === undefined || q.tail === undefined, { path: ['tail'], message: 'ask for offset (a byte range) or tail (the last lines), not both' });

export interface LogChunk {
  runId: string;
  attempt: number;
  /** Attempts the run has had, for `--attempt`. */
  attempts: number[];
  /** Byte offset of `text` in the log. */
  offset: number;
  /** Where the next read starts (poll with `offset=nextOffset`). */
  nextOffset: number;
  /** Size of the log in S3 now; 0 until the agent first uploads it. */
  size: number;
  text: string;
}

/** A byte range of an attempt's log (`offset`/`length`) or its tail (`tail` lines, the default). */
export async function readRunLogs(request: { owner: string; runId: string; query: unknown }, deps: ArtifactReadDeps): Promise<LogChunk> {
  const query = parseQuery(LogsQuerySchema, request.query);
  const record = await getOwnedRun(request, deps);
  const attempts = record.attempts.map((a) => a.attempt).sort((a, b) => a - b);
  const attempt = query.attempt ?? attempts.at(-1) ?? 1;
  // An attempt the run never had would read as an empty log: say how many there are instead.
  if (query.attempt !== undefined && !attempts.includes(query.attempt)) {
    const had = attempts.length === 0 ? 'no attempts yet' : `${attempts.length} attempt${attempts.length === 1 ? '' : 's'} (${attempts.join(', ')})`;
    throw new NotFoundError(`Run ${record.runId} has no attempt ${query.attempt}: it has ${had}`);
  }
  const node = query.node ?? 0;
  const nodes = nodeCount(record.spec);
  if (node >= nodes) {
    throw new NotFoundError(`Run ${record.runId} has no node ${node}: it has ${nodes === 1 ? 'one node (0)' : `${nodes} nodes (0 to ${nodes - 1})`}`);
  }
  const key = nodeLogKey(runPrefix(record.runId), attempt, node);
  const chunks = `${runPrefix(record.runId)}/live/attempt-${attempt}${node === 0 ? '' : `-node-${node}`}/log-`;
  const stored = await objectSize(deps, key);
  const read = (k: string, from: number, to: number) => readRange(deps, k, from, to);

  if (query.offset !== undefined) {
    const layout = await streamLayout(deps, key, stored, chunks, query.offset);
    const size = layout.size;
    const offset = Math.min(query.offset, size);
    const end = Math.min(size, offset + (query.length ?? DEFAULT_LOG_RANGE_BYTES));
    const bytes = end > offset ? await readStream(layout, offset, end, read) : Buffer.alloc(0);
    // A range can end inside a multi-byte character; leave that character to the next read.
    const whole = bytes.subarray(0, completeUtf8Length(bytes));
    return { runId: record.runId, attempt, attempts, size, offset, nextOffset: offset + whole.length, text: whole.toString('utf8') };
  }

  const layout = await streamLayout(deps, key, stored, chunks, stored);
  const size = layout.size;
  const lines = query.tail ?? DEFAULT_TAIL_LINES;
  const start = Math.max(0, size - TAIL_WINDOW_BYTES);
  const window = size > start ? await readStream(layout, start, size, read) : Buffer.alloc(0);
  const tail = lastLines(window, lines, start > 0);
  return { runId: record.runId, attempt, attempts, size, offset: size - tail.length, nextOffset: size, text: tail.toString('utf8') };
}

/** One line of metrics.jsonl: `{ts, attempt, <metric>: number, …}`. */
export type MetricPoint = Record<string, unknown>;

export const MetricsQuerySchema = z.object({
  limit: count(1, 5000).default(1000),
  nextToken: z.string().regex(/^[A-Za-z0-9_-]{1,200}$/, 'must be a nextToken from a previous answer').optional(),
});

export interface MetricsPage {
  runId: string;
  metrics: MetricPoint[];
  /** Present while more lines are stored now. */
  nextToken?: string;
  /** Where to continue once the agent has appended more lines (for live following). */
  resumeToken: string;
}

/** Most bytes read from metrics.jsonl per call. */
const METRICS_CHUNK_BYTES = 1024 * 1024;

/** A page of metrics lines, oldest first; lines that are not JSON objects are skipped. */
export async function readRunMetrics(request: { owner: string; runId: string; query: unknown }, deps: ArtifactReadDeps): Promise<MetricsPage> {
  const query = parseQuery(MetricsQuerySchema, request.query);
  const from = query.nextToken === undefined ? 0 : decodeToken(query.nextToken);
  const record = await getOwnedRun(request, deps);
  const key = `${runPrefix(record.runId)}/metrics.jsonl`;
  // The newest attempt's live rows continue the consolidated file (earlier attempts' rows are in it).
  const attempt = record.attempts.at(-1)?.attempt ?? 1;
  const layout = await streamLayout(deps, key, await objectSize(deps, key), `${runPrefix(record.runId)}/live/attempt-${attempt}/metrics-`, from);
  const size = layout.size;
  const start = Math.min(from, size);
  const end = Math.min(size, start + METRICS_CHUNK_BYTES);
  const chunk = end > start ? await readStream(layout, start, end, (k, a, b) => readRange(deps, k, a, b)) : Buffer.alloc(0);

  const metrics: MetricPoint[] = [];
  let consumed = 0;
  while (metrics.length < query.limit && consumed < chunk.length) {
    const newline = chunk.indexOf(0x0a, consumed);
    const lineEnd = newline === -1 ? chunk.length : newline + 1;
    const line = chunk.subarray(consumed, lineEnd).toString('utf8').trim();
    const point = parseMetricLine(line);
    // The final line without its newline may still be half-written: take it only when it parses.
    if (newline === -1 && end === size && point === undefined && line !== '') break;
    if (newline === -1 && end < size) break;
    if (point !== undefined) metrics.push(point);
    consumed = lineEnd;
  }
  // A single line longer than a whole chunk can never be read: step over it.
  if (consumed === 0 && chunk.length === METRICS_CHUNK_BYTES && chunk.indexOf(0x0a) === -1) consumed = chunk.length;

  const next = start + consumed;
  return {
    runId: record.runId,
    metrics,
    nextToken: next < size ? encodeToken(next) : undefined,
    resumeToken: encodeToken(next),
  };
}

export interface CheckpointList {
  runId: string;
  /** Complete checkpoints, newest first. */
  checkpoints: Array<CheckpointInfo & { latest: boolean }>;
  /** Id of the checkpoint a resume would start from. */
  latest?: string;
}

/** The run's complete checkpoints, newest first, with the one `latest.json` points at marked. */
export async function listRunCheckpoints(request: { owner: string; runId: string }, deps: ArtifactReadDeps): Promise<CheckpointList> {
  const record: RunRecord = await getOwnedRun(request, deps);
  const artifacts = new S3Artifacts(deps.s3, deps.runsBucket);
  const [all, latest] = await Promise.all([artifacts.listCheckpoints(record.runId), artifacts.latestCheckpoint(record.runId)]);
  const newestFirst = [...all].reverse();
  return {
    runId: record.runId,
    checkpoints: newestFirst.map((c) => (c.id === latest?.id ? { ...c, ...latest, latest: true } : { ...c, latest: false })),
    latest: latest?.id,
  };
}

function parseQuery<S extends z.ZodType>(schema: S, query: unknown): z.output<S> {
  const parsed = schema.safeParse(query ?? {});
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error);
    throw new RunInvalidError(`Invalid query: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  return parsed.data;
}

function encodeToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url');
}

const TokenSchema = z.object({ o: z.number().int().min(0) });

function decodeToken(token: string): number {
  try {
    const parsed = TokenSchema.safeParse(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data.o;
  } catch {
    // reported below
  }
  throw new RunInvalidError('Invalid query: nextToken: must be a nextToken from a previous answer', [
    { path: 'nextToken', message: 'must be a nextToken from a previous answer' },
  ]);
}

function parseMetricLine(line: string): MetricPoint | undefined {
  if (line === '') return undefined;
  try {
    const value: unknown = JSON.parse(line);
    const parsed = z.record(z.string(), z.unknown()).safeParse(value);
    return parsed.success && !Array.isArray(value) ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Length of the longest prefix of `bytes` that does not end inside a UTF-8 character. */
export function completeUtf8Length(bytes: Uint8Array): number {
  const length = bytes.length;
  let lead = length - 1;
  // Continuation bytes are 10xxxxxx; a character is at most four bytes long.
  while (lead >= 0 && length - lead < 4 && ((bytes[lead] ?? 0) & 0xc0) === 0x80) lead -= 1;
  if (lead < 0) return length;
  const first = bytes[lead] ?? 0;
  const needed = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
  return length - lead >= needed ? length : lead;
}

/** The last `count` lines of `window`; when the window starts mid-file its first, partial line is dropped. */
function lastLines(window: Buffer, count: number, startsMidFile: boolean): Buffer {
  let from = 0;
  if (startsMidFile) {
    const firstNewline = window.indexOf(0x0a);
    from = firstNewline === -1 ? window.length : firstNewline + 1;
  }
  // A trailing newline ends the last line rather than starting an empty one.
  let position = window.length - (window.at(-1) === 0x0a ? 1 : 0);
  for (let seen = 0; seen < count; seen += 1) {
    const newline = window.lastIndexOf(0x0a, position - 1);
    if (newline < from) return window.subarray(from);
    position = newline;
  }
  return window.subarray(position + 1);
}

async function objectSize(deps: RunsBucketDeps, key: string): Promise<number> {
  try {
    const head = await deps.s3.send(new HeadObjectCommand({ Bucket: deps.runsBucket, Key: key }));
    return head.ContentLength ?? 0;
  } catch (error) {
    if (awsErrorCode(error) === 'NotFound' || awsErrorCode(error) === 'NoSuchKey' || awsHttpStatus(error) === 404) return 0;
    throw translateAwsError(error, `HeadObject s3://${deps.runsBucket}/${key}`);
  }
}

/** Bytes [start, end) of an object. */
async function readRange(deps: RunsBucketDeps, key: string, start: number, end: number): Promise<Buffer> {
  try {
    const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.runsBucket, Key: key, Range: `bytes=${start}-${end - 1}` }));
    return object.Body ? Buffer.from(await object.Body.transformToByteArray()) : Buffer.alloc(0);
  } catch (error) {
    throw translateAwsError(error, `GetObject s3://${deps.runsBucket}/${key}`);
  }
}
