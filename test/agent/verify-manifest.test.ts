import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DATASET_MANIFEST_NAME, datasetManifest } from '../../shared/domain/dataset-manifest';

const SCRIPT = resolve(import.meta.dirname, '../../shared/agent/verify_manifest.py');
const SOURCE = 's3://datasets/mnist/';

let dir: string;
const verify = () => spawnSync('python3', [SCRIPT, SOURCE, dir], { encoding: 'utf8' });
const write = (path: string, body: string) => {
  mkdirSync(join(dir, path, '..'), { recursive: true });
  writeFileSync(join(dir, path), body);
};

/** verify_manifest.py, the prefetch's check of a copied dataset, against manifests datasetManifest() writes. */
describe('verify_manifest.py', () => {
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'runctl-manifest-'));
    write('train/a.bin', 'aaaa');
    write('train/b.bin', 'bbbbbb');
    write('labels.csv', 'x,y\n');
    const manifest = datasetManifest([
      { path: 'train/a.bin', body: 'aaaa' },
      { path: 'train/b.bin', body: 'bbbbbb' },
      { path: 'labels.csv', body: 'x,y\n' },
    ]);
    write(DATASET_MANIFEST_NAME, JSON.stringify(manifest));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('passes silently a copy that matches every file of its manifest', () => {
    const result = verify();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('names the first corrupted file: same size, other bytes', () => {
    write('train/b.bin', 'bbbbbB');
    write('train/a.bin', 'aaaA');
    const result = verify();
    expect(result.status).toBe(1);
    // The manifest is sorted by path: labels.csv, train/a.bin, train/b.bin.
    expect(result.stderr).toMatch(/^runctl prefetch: s3:\/\/datasets\/mnist\/ does not match its manifest: train\/a\.bin is sha256 [0-9a-f]{64}, the manifest says 61be55a8/);
  });

  it('names a file of the wrong size, and one missing from the copy', () => {
    write('labels.csv', 'x,y,z\n');
    expect(verify().stderr).toContain('labels.csv is 6 bytes, the manifest says 4');
    write('labels.csv', 'x,y\n');
    rmSync(join(dir, 'train/b.bin'));
    expect(verify().stderr).toContain('train/b.bin is missing from the copy');
  });

  it('refuses a manifest it cannot read, and one whose path climbs out of the copy', () => {
    write(DATASET_MANIFEST_NAME, '{"version": 2}');
    const unreadable = verify();
    expect(unreadable.status).toBe(2);
    expect(unreadable.stderr).toContain('the manifest of s3://datasets/mnist/ cannot be read');
    write(DATASET_MANIFEST_NAME, JSON.stringify({ version: 1, files: [{ path: '../etc/passwd', size: 1, sha256: 'a'.repeat(64) }] }));
    expect(verify().status).toBe(2);
  });

  it('datasetManifest refuses a path that climbs out of the dataset', () => {
    expect(() => datasetManifest([{ path: '../x', body: '' }])).toThrow(/relative path/);
  });
});
