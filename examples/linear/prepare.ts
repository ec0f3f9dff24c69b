import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { uploadBundle } from '../bundle';
import { DATASET_MANIFEST_NAME, datasetManifest } from '../../shared/domain/dataset-manifest';

/**
 * Puts the linear example where a run can reach it on the local backend: its code bundle,
 * content-addressed as `runctl submit` uploads it, and a synthetic dataset under
 * `s3://<bucket>/datasets/…` that the run prefetches to /data, with its manifest (sizes and sha256)
 * that the prefetch checks the copy against.
 */

export const EXAMPLE_DIR = dirname(fileURLToPath(import.meta.url));

export interface DatasetOptions {
  rows: number;
  /** Noise features beside the two informative ones. */
  noiseFeatures?: number;
  seed?: number;
}

/** A deterministic PRNG (mulberry32), so the same options give the same bytes. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Two noisy concentric rings (label 1 inside) plus noise features: `label,x1,x2,…` per line. */
export function generateDataset(options: DatasetOptions): string {
  const next = random(options.seed ?? 1);
  const gauss = () => Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next());
  const lines = [`# label,x,y,${Array.from({ length: options.noiseFeatures ?? 6 }, (_, i) => `noise${i + 1}`).join(',')}`];
  for (let i = 0; i < options.rows; i += 1) {
    const inside = next() < 0.5;
    const radius = (inside ? 1 : 2) + 0.25 * gauss();
    const angle = 2 * Math.PI * next();
    const features = [radius * Math.cos(angle), radius * Math.sin(angle)];
    for (let n = 0; n < (options.noiseFeatures ?? 6); n += 1) features.push(gauss());
    lines.push([inside ? '1' : '0', ...features.map((v) => v.toFixed(4))].join(','));
  }
  return `${lines.join('\n')}\n`;
}

export interface PreparedExample {
  bundle: string;
  dataset: string;
  /** `train_torch.py` when `import torch` works here, else the pure Python `train.py`. */
  entrypoint: string;
}

/** Uploads the code bundle (skipped when that content is already there) and the dataset. */
export async function prepareExample(
  s3: S3Client,
  bucket: string,
  options: { dataset: DatasetOptions; name?: string; preferTorch?: boolean },
): Promise<PreparedExample> {
  const bundle = await uploadBundle(s3, bucket, EXAMPLE_DIR);
  const name = options.name ?? `linear-rings-${options.dataset.rows}`;
  const csv = generateDataset(options.dataset);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `datasets/${name}/train.csv`, Body: csv }));
  // Uploaded with its manifest: the run's prefetch checks the copy on the instance against it.
  const manifest = datasetManifest([{ path: 'train.csv', body: csv }]);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `datasets/${name}/${DATASET_MANIFEST_NAME}`, Body: JSON.stringify(manifest) }));
  return {
    bundle,
    dataset: `s3://${bucket}/datasets/${name}/`,
    entrypoint: options.preferTorch !== false && torchImports() ? 'train_torch.py' : 'train.py',
  };
}

/** Whether the local python3 can import torch. */
export function torchImports(): boolean {
  return spawnSync('python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

/** The run spec of the example (the body of `POST /runs` is `{ spec }`). */
export function exampleSpec(
  prepared: PreparedExample,
  hyperparameters: Record<string, string | number | boolean>,
  overrides: { name?: string; maxRestartsOnError?: number } = {},
): Record<string, unknown> {
  return {
    name: overrides.name ?? 'linear-example',
    code: { bundle: prepared.bundle, entrypoint: prepared.entrypoint },
    hyperparameters,
    data: [{ source: prepared.dataset, target: '/data' }],
    instance: { types: ['c7i.large'], spot: true },
    // Short intervals: a local epoch takes a second, not an hour.
    checkpoint: { intervalSeconds: 5, graceSeconds: 10 },
    recovery: { maxRestartsOnError: overrides.maxRestartsOnError ?? 0 },
  };
}
