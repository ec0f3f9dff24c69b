import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { DATASET_MANIFEST_NAME, DatasetManifestSchema, type DatasetManifest } from '../../shared/domain/dataset-manifest';
import { formatBytes } from '../../shared/usecases/uploads';
import { UsageError } from '../errors';

/**
 * `runctl data manifest DIR`: writes DIR/_runctl_manifest.json (every file's path, size and
 * sha256), so that the dataset uploaded with it (`aws s3 sync DIR s3://bucket/prefix/`) is
 * checked file by file when a run prefetches it. Reads only the local directory: no API call.
 */
export async function runData(argv: string[], options: { parseOnly?: boolean } = {}): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'manifest') throw new UsageError(`Unknown command "data ${sub ?? ''}": runctl data manifest DIR`);
  let positionals: string[];
  try {
    ({ positionals } = parseArgs({ args: rest, options: {}, allowPositionals: true, strict: true }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const [dir, ...extra] = positionals;
  if (dir === undefined || extra.length > 0) throw new UsageError('runctl data manifest takes one directory: runctl data manifest ./my-dataset');
  if (options.parseOnly === true) return 0;
  const manifest = await manifestOf(dir);
  const target = join(dir, DATASET_MANIFEST_NAME);
  await writeFile(target, `${JSON.stringify(manifest, null, 2)}\n`);
  const bytes = manifest.files.reduce((sum, f) => sum + f.size, 0);
  console.error(`Wrote ${target}: ${manifest.files.length} file(s), ${formatBytes(bytes)}. Upload it with the files, e.g. aws s3 sync ${dir} s3://BUCKET/PREFIX/`);
  return 0;
}

/** The manifest of every file under `dir` (the manifest itself excluded), sorted by path. */
export async function manifestOf(dir: string): Promise<DatasetManifest> {
  const files: DatasetManifest['files'] = [];
  for (const path of await filesUnder(dir)) {
    const name = relative(dir, path).split(sep).join('/');
    if (name === DATASET_MANIFEST_NAME) continue;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk);
    files.push({ path: name, size: (await stat(path)).size, sha256: hash.digest('hex') });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return DatasetManifestSchema.parse({ version: 1, files });
}

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(path)));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}
