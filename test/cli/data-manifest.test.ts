import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DATASET_MANIFEST_NAME, DatasetManifestSchema } from '../../shared/domain/dataset-manifest';
import { runCli } from './run-cli';

const VERIFY = resolve(import.meta.dirname, '../../shared/agent/verify_manifest.py');

describe('runctl data manifest DIR', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'runctl-data-manifest-'));
    mkdirSync(join(dir, 'train'));
    writeFileSync(join(dir, 'train', 'part-0.csv'), 'a,b\n1,2\n');
    writeFileSync(join(dir, 'labels.txt'), 'cat\ndog\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the manifest the prefetch checks: a copy passes, a corrupted file is named', async () => {
    const result = await runCli(['data', 'manifest', dir], {});
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('2 file(s)');
    const manifest = DatasetManifestSchema.parse(JSON.parse(readFileSync(join(dir, DATASET_MANIFEST_NAME), 'utf8')));
    expect(manifest.files.map((f) => [f.path, f.size])).toEqual([['labels.txt', 8], ['train/part-0.csv', 8]]);

    // Run again over a directory that already holds one: the manifest never lists itself.
    expect((await runCli(['data', 'manifest', dir], {})).code).toBe(0);
    expect(spawnSync('python3', [VERIFY, 's3://d/x/', dir]).status).toBe(0);

    writeFileSync(join(dir, 'train', 'part-0.csv'), 'a,b\n1,3\n');
    const checked = spawnSync('python3', [VERIFY, 's3://d/x/', dir], { encoding: 'utf8' });
    expect(checked.status).toBe(1);
    expect(checked.stderr).toContain('does not match its manifest: train/part-0.csv is sha256');
  });

  it('refuses no directory, or two, with the usage (exit 2)', async () => {
    const none = await runCli(['data', 'manifest'], {});
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('runctl data manifest takes one directory');
  });
});
