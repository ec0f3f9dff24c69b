import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * A dataset's manifest: every file under the dataset's prefix with its size and sha256, stored
 * beside them as `_runctl_manifest.json`. Written when the dataset is uploaded; the prefetch
 * checks the instance's copy against it (shared/agent/verify_manifest.py) and fails the run's
 * prechecks naming the first file that does not match. docs/run-spec.md#dataset-manifests.
 */

/** The manifest's key under the dataset prefix (and its name in the copy on the instance). */
export const DATASET_MANIFEST_NAME = '_runctl_manifest.json';

export const DatasetManifestSchema = z.object({
  version: z.literal(1),
  files: z.array(
    z.object({
      /** Relative to the dataset prefix, "/"-separated, no "." or ".." segment. */
      path: z.string().min(1).refine((p) => !p.startsWith('/') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), 'must be a relative path without "." or ".." segments'),
      size: z.number().int().min(0),
      sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
    }),
  ),
});
export type DatasetManifest = z.infer<typeof DatasetManifestSchema>;

/** The manifest of the given files (path relative to the dataset prefix → content), sorted by path. */
export function datasetManifest(files: ReadonlyArray<{ path: string; body: Uint8Array | string }>): DatasetManifest {
  const entries = files
    .map(({ path, body }) => {
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      return { path, size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return DatasetManifestSchema.parse({ version: 1, files: entries });
}
