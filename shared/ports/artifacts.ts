import type { CheckpointRef } from '../domain/run-record';

/**
 * Artifacts: what a run leaves in S3 under `runs/<runId>/` (code, checkpoints, logs, outputs).
 * The agent writes a checkpoint's files, then `<id>/_COMPLETE.json`, then `checkpoints/latest.json`;
 * readers here only ever return a checkpoint whose `_COMPLETE.json` exists.
 */

/** A complete checkpoint, as its `_COMPLETE.json` marker describes it. */
export interface CheckpointInfo extends CheckpointRef {
  /** `<attempt>-<seq>`, e.g. `0002-000007`: sorts in the order the checkpoints were written. */
  id: string;
  files?: number;
  bytes?: number;
}

/** The outputs manifest the agent writes after a successful exit. */
export interface OutputsManifest {
  uri: string;
  attempt: number;
  files: number;
  bytes: number;
}

/** One file a run wrote to `runs/<runId>/outputs/` (the outputs manifest excluded). */
export interface OutputFile {
  /** Path under the outputs prefix, e.g. `model/weights.pt`. */
  path: string;
  size: number;
  lastModified: string;
}

export interface Artifacts {
  /** Whether an object exists at an `s3://bucket/key` URI. */
  objectExists(uri: string): Promise<boolean>;
  /** The checkpoint `latest.json` points at, if it is complete; undefined when there is none. */
  latestCheckpoint(runId: string): Promise<CheckpointInfo | undefined>;
  /** Every complete checkpoint of the run, oldest first. */
  listCheckpoints(runId: string): Promise<CheckpointInfo[]>;
  /** The outputs manifest, with its own URI; undefined when the agent wrote none. */
  outputsManifest(runId: string): Promise<(OutputsManifest & { manifestUri: string }) | undefined>;
  /** The lines of the run's metrics.jsonl that are JSON objects, oldest first; [] when there is none. */
  readMetrics(runId: string): Promise<Array<Record<string, unknown>>>;
}

/** Key prefix of everything a run writes. */
export function runPrefix(runId: string): string {
  return `runs/${runId}`;
}
