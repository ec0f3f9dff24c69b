import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { RunRecord } from '../shared/domain/run-record';

/**
 * What `npm start` shows: one progress line per change while a run goes (phase, attempt, the
 * latest metrics the agent synced to `runs/<id>/metrics.jsonl`), and the summary at the end.
 */

const MetricLineSchema = z.looseObject({ ts: z.string().optional(), attempt: z.number().optional() });
export type MetricLine = Record<string, unknown> & { attempt?: number };

/** Every line of the run's metrics.jsonl (empty until the agent's first sync). */
export async function readMetrics(s3: S3Client, bucket: string, runId: string): Promise<MetricLine[]> {
  let text: string;
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `runs/${runId}/metrics.jsonl` }));
    text = (await object.Body?.transformToString('utf8')) ?? '';
  } catch {
    return [];
  }
  return text.split('\n').flatMap((line) => {
    try {
      const parsed = MetricLineSchema.safeParse(JSON.parse(line));
      return parsed.success ? [parsed.data] : [];
    } catch {
      return [];
    }
  });
}

function numberOf(line: MetricLine | undefined, key: string): number | undefined {
  const value = line?.[key];
  return typeof value === 'number' ? value : undefined;
}

/** The newest value of a metric, or undefined. */
export function lastValue(metrics: readonly MetricLine[], key: string): number | undefined {
  for (let i = metrics.length - 1; i >= 0; i -= 1) {
    const value = numberOf(metrics[i], key);
    if (value !== undefined) return value;
  }
  return undefined;
}

function formatNumber(value: number | undefined, digits = 4): string {
  return value === undefined ? '-' : String(Number(value.toFixed(digits)));
}

/** `  12.3s  TRAINING      attempt 1  epoch 5  loss 0.41  accuracy 0.87` */
export function progressLine(record: RunRecord, metrics: readonly MetricLine[], elapsedMs: number): string {
  const attempt = record.attempts.at(-1)?.attempt;
  const current = metrics.filter((m) => attempt === undefined || m.attempt === attempt);
  const parts = [`${(elapsedMs / 1000).toFixed(1).padStart(6)}s`, record.status.padEnd(20), `attempt ${attempt ?? '-'}`];
  const epoch = lastValue(current, 'epoch');
  if (epoch !== undefined) {
    parts.push(`epoch ${epoch}`, `loss ${formatNumber(lastValue(current, 'loss'))}`);
    const accuracy = lastValue(current, 'accuracy');
    if (accuracy !== undefined) parts.push(`accuracy ${formatNumber(accuracy)}`);
  }
  return parts.join('  ');
}

export interface RunSummary {
  runId: string;
  status: string;
  reason?: string;
  attempts: Array<{ attempt: number; instanceId?: string; ended: string; resumeFrom?: string }>;
  /** The epoch a resumed attempt started after (the script prints `{"resumed_from_epoch": n}`). */
  resumedFromEpoch?: number;
  finalLoss?: number;
  finalAccuracy?: number;
  checkpoint?: string;
  outputs?: string;
  wallSeconds: number;
}

/** The summary of a finished run from its record and metrics. */
export function summarize(record: RunRecord, metrics: readonly MetricLine[], wallMs: number, checkpoint?: string): RunSummary {
  return {
    runId: record.runId,
    status: record.status,
    reason: record.statusReason,
    attempts: record.attempts.map((a) => ({
      attempt: a.attempt,
      instanceId: a.instanceId,
      ended: a.endReason ?? (a.endedAt === undefined ? 'still running' : 'ended'),
      resumeFrom: a.resumeFrom,
    })),
    resumedFromEpoch: lastValue(metrics, 'resumed_from_epoch'),
    finalLoss: lastValue(metrics, 'loss'),
    finalAccuracy: lastValue(metrics, 'accuracy'),
    checkpoint: checkpoint ?? record.latestCheckpoint?.uri,
    outputs: record.status === 'SUCCEEDED' ? /(s3:\/\/\S+_manifest\.json)/.exec(record.statusReason ?? '')?.[1] : undefined,
    wallSeconds: wallMs / 1000,
  };
}

/** The summary as the terminal shows it. */
export function renderSummary(summary: RunSummary): string {
  const lines = [
    '',
    `Run         ${summary.runId}`,
    `Status      ${summary.status}${summary.reason !== undefined && summary.status !== 'SUCCEEDED' ? ` (${summary.reason})` : ''}`,
    `Attempts    ${summary.attempts.length}`,
    ...summary.attempts.map(
      (a) =>
        `  #${a.attempt}  ${(a.instanceId ?? '-').padEnd(16)}  ended: ${a.ended}${a.resumeFrom !== undefined ? `  (resumed from ${a.resumeFrom})` : ''}`,
    ),
    `Resumed     ${summary.resumedFromEpoch === undefined ? 'no (one attempt ran every epoch)' : `after epoch ${summary.resumedFromEpoch}`}`,
    `Final loss  ${formatNumber(summary.finalLoss)}${summary.finalAccuracy !== undefined ? `  (accuracy ${formatNumber(summary.finalAccuracy)})` : ''}`,
    `Checkpoint  ${summary.checkpoint ?? '-'}`,
  ];
  if (summary.outputs !== undefined) lines.push(`Outputs     ${summary.outputs}`);
  lines.push(`Wall time   ${summary.wallSeconds.toFixed(1)} s`, '');
  return lines.join('\n');
}

/** What `followRun` needs of the local backend. */
export interface FollowedBackend {
  store: { get(runId: string): Promise<RunRecord | undefined> };
  s3: S3Client;
  services: { bucket: string };
  waitForRun(runId: string): Promise<RunRecord>;
}

/**
 * Prints a progress line whenever the run's phase, attempt or metrics change (about every
 * second), calls `onRecord` with each look at the record (to act mid-run), and resolves with the
 * final record.
 */
export async function followRun(
  backend: FollowedBackend,
  runId: string,
  started: number,
  onRecord: (record: RunRecord) => Promise<void> = async () => undefined,
): Promise<RunRecord> {
  const outcome = backend.waitForRun(runId);
  let done = false;
  void outcome.finally(() => {
    done = true;
  });
  let lastLine = '';
  while (!done) {
    const record = await backend.store.get(runId);
    if (record !== undefined) {
      const metrics = await readMetrics(backend.s3, backend.services.bucket, runId);
      const line = progressLine(record, metrics, Date.now() - started);
      if (line.slice(8) !== lastLine) console.log(line);
      lastLine = line.slice(8);
      await onRecord(record);
    }
    await Promise.race([outcome.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000))]);
  }
  return outcome;
}
