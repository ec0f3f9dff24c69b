/**
 * The catalog of pre-warmed dataset volumes and built images, kept in the runs table under
 * their own key prefixes (shared/adapters/dynamo-catalog.ts). A run asks for "the volume with
 * dataset X" or "the image of bundle Y" and the catalog answers.
 */
import type { Page } from './run-store';

/** A pre-warmed dataset volume: the filled volume, and the snapshot runs in other AZs restore from. */
export interface VolumeEntry {
  datasetUri: string;
  sizeGiB: number;
  /** AZ of `volumeId`. */
  az: string;
  volumeId: string;
  snapshotId: string;
  volumeType: string;
  bytes: number;
  files: number;
  createdAt: string;
  /** Execution name of the prewarm that made it. */
  prewarmId: string;
  /** The run that holds the catalogued volume attached right now (read-only); absent when free. */
  claimedBy?: string;
}

/** An image built from a code bundle. */
export interface ImageEntry {
  /** sha256 of the code bundle (the content address it was uploaded under). */
  bundleSha: string;
  repository: string;
  /** `<repositoryUri>@<digest>`. */
  imageUri: string;
  digest: string;
  /** Dockerfile path inside the bundle it was built from. */
  dockerfile: string;
  createdAt: string;
}

export interface Catalog {
  /** Records (or replaces) the volume of a dataset. */
  putVolume(entry: VolumeEntry): Promise<void>;
  getVolume(datasetUri: string): Promise<VolumeEntry | undefined>;
  /** Every catalogued volume, newest first. */
  listVolumes(options?: { limit?: number; nextToken?: string }): Promise<Page<VolumeEntry>>;
  /**
   * Marks the catalogued volume as attached to `runId`; false when another run holds it or the
   * entry now names another volume. Conditional, so two runs can never both take it.
   */
  claimVolume(datasetUri: string, volumeId: string, runId: string): Promise<boolean>;
  /** Clears the claim of `runId`; a claim held by no one or by another run is left alone. */
  releaseVolume(datasetUri: string, runId: string): Promise<void>;
  putImage(entry: ImageEntry): Promise<void>;
  getImage(bundleSha: string): Promise<ImageEntry | undefined>;
}
