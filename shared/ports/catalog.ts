/**
 * The catalog of pre-warmed dataset volumes and built images, kept in the runs table under
 * their own key prefixes (shared/adapters/dynamo-catalog.ts). A run asks for "the volume with
 * dataset X" or "the image of bundle Y" and the catalog answers from its owner's entries only:
 * every entry belongs to the owner whose request made it, and no lookup, write or listing of
 * one owner reaches another's.
 */
import { RunctlError } from '../errors';
import type { Page } from './run-store';

/** A pre-warmed dataset volume: the filled volume, and the snapshot runs in other AZs restore from. */
export interface VolumeEntry {
  /** The owner whose prewarm made it (the caller's identity, shared/http/responses.ts). */
  owner: string;
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
  /** The owner whose build made it. */
  owner: string;
  /** sha256 of the code bundle (the content address it was uploaded under). */
  bundleSha: string;
  repository: string;
  /** `<repositoryUri>@<digest>`. */
  imageUri: string;
  digest: string;
  /** The immutable tag the build pushed (`bundle-<sha>-<build>`), which names `digest` for good. */
  tag: string;
  /** Execution name of the build that pushed it. */
  buildId: string;
  /** Dockerfile path inside the bundle it was built from. */
  dockerfile: string;
  createdAt: string;
}

/**
 * How a put may land: on no entry at all, on the writer's own entry (a retried step), or on the
 * entry the writer read when it started (`replaces`: that entry's prewarm or build id).
 */
export interface PutCondition {
  replaces?: string;
}

export interface ListOptions {
  limit?: number;
  nextToken?: string;
}

export interface Catalog {
  /**
   * Records the volume of an owner's dataset. Conditional (PutCondition): a write that would land
   * on an entry another prewarm recorded meanwhile throws CatalogConflictError.
   */
  putVolume(entry: VolumeEntry, condition?: PutCondition): Promise<void>;
  getVolume(owner: string, datasetUri: string): Promise<VolumeEntry | undefined>;
  /** The owner's catalogued volumes, newest first. */
  listVolumes(owner: string, options?: ListOptions): Promise<Page<VolumeEntry>>;
  /**
   * Marks the owner's catalogued volume as attached to `runId`; false when another run holds it
   * or the entry now names another volume. Conditional, so two runs can never both take it.
   */
  claimVolume(owner: string, datasetUri: string, volumeId: string, runId: string): Promise<boolean>;
  /** Clears the claim of `runId`; a claim held by no one or by another run is left alone. */
  releaseVolume(owner: string, datasetUri: string, runId: string): Promise<void>;
  /** Records the image of an owner's bundle; conditional as putVolume is. */
  putImage(entry: ImageEntry, condition?: PutCondition): Promise<void>;
  getImage(owner: string, bundleSha: string): Promise<ImageEntry | undefined>;
  /** The owner's catalogued images, newest first. */
  listImages(owner: string, options?: ListOptions): Promise<Page<ImageEntry>>;
}

/** A catalog write found an entry it may not replace: another prewarm or build recorded it meanwhile. */
export class CatalogConflictError extends RunctlError {
  override name = 'Catalog.Conflict';
}
