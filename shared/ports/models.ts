import { z } from 'zod';

/** One file of a model version, stored once per content at `models/blobs/sha256/<hex>`. */
export const ModelFileSchema = z.object({ path: z.string(), size: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
export type ModelFile = z.infer<typeof ModelFileSchema>;

/** Where a version came from: enough to reproduce the run that made it. */
export const LineageSchema = z.object({
  runId: z.string(),
  /** sha256 of the code bundle (its content address). */
  bundleDigest: z.string().optional(),
  dataSources: z.array(z.object({ source: z.string(), target: z.string() })),
  /** The dataset manifests the run's data was checked against, when it had any. */
  dataManifests: z.array(z.string()),
  hyperparameters: z.record(z.string(), z.string()),
  finalMetrics: z.record(z.string(), z.number()),
  /** The training image, when the run named one by digest. */
  imageDigest: z.string().optional(),
});
export type Lineage = z.infer<typeof LineageSchema>;

export const ModelVersionSchema = z.object({
  name: z.string(),
  version: z.number().int().min(1),
  createdAt: z.string(),
  files: z.array(ModelFileSchema),
  lineage: LineageSchema,
});
export type ModelVersion = z.infer<typeof ModelVersionSchema>;

export const ModelSchema = z.object({
  name: z.string(),
  latestVersion: z.number().int().min(0),
  /** stage → version: one version per stage. */
  stages: z.record(z.string(), z.number().int()),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type Model = z.infer<typeof ModelSchema>;

export const StageChangeSchema = z.object({ stage: z.string(), version: z.number().int(), previous: z.number().int().optional(), at: z.string() });
export type StageChange = z.infer<typeof StageChangeSchema>;

/** The registry's records, per owner. Version numbers and stage moves are conditional writes. */
export interface Models {
  /** Reserves the next version number of `name` (creating the model at 1). */
  nextVersion(owner: string, name: string, at: string): Promise<number>;
  putVersion(owner: string, version: ModelVersion): Promise<void>;
  get(owner: string, name: string): Promise<Model | undefined>;
  list(owner: string, options?: { limit?: number; nextToken?: string }): Promise<{ items: Model[]; nextToken?: string }>;
  versions(owner: string, name: string): Promise<ModelVersion[]>;
  version(owner: string, name: string, version: number): Promise<ModelVersion | undefined>;
  /** Moves `stage` to `version` if the stage still holds `expected` (undefined: no version); records the change. */
  promote(owner: string, name: string, change: StageChange, expected: number | undefined): Promise<void>;
  history(owner: string, name: string): Promise<StageChange[]>;
}

/** Model files in the bucket, content-addressed. */
export interface ModelBlobs {
  /** The run's output files (key under `runs/<id>/outputs/`, size), the outputs manifest excluded. */
  listOutputs(runId: string): Promise<Array<{ path: string; key: string; size: number }>>;
  /** Hashes an object and copies it to its content address (once); answers the digest and size. */
  storeContentAddressed(key: string): Promise<{ sha256: string; size: number }>;
  /** A time-limited GET URL of a blob. */
  downloadUrl(sha256: string): Promise<string>;
}
