import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { packDirectory } from '../../cli/pack';

/** Lists a .tar.gz with the system tar, so the archive is checked by another implementation. */
function listTarball(file: string): string[] {
  const result = spawnSync('tar', ['-tzf', file], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`tar -tzf failed: ${result.stderr}`);
  return result.stdout.split('\n').filter((line) => line !== '');
}

describe('packing a code directory', () => {
  let root: string;
  const write = async (path: string, text: string) => {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'runctl-pack-'));
  });
  afterEach(async () => rm(root, { recursive: true, force: true }));

  it('honours .gitignore and .runctlignore at every level, and leaves .git out', async () => {
    await write('train.py', 'print("hi")\n');
    await write('.gitignore', 'data/\n*.log\n__pycache__/\n');
    await write('.runctlignore', '!keep.log\nsecrets.env\n/checkpoints\n');
    await write('.git/HEAD', 'ref: refs/heads/main\n');
    await write('data/train.bin', 'x'.repeat(1000));
    await write('run.log', 'noise');
    await write('keep.log', 'wanted');
    await write('secrets.env', 'TOKEN=1');
    await write('checkpoints/ckpt.pt', 'weights');
    await write('src/checkpoints/module.py', 'kept: /checkpoints is anchored at the root');
    await write('src/__pycache__/x.pyc', 'bytecode');
    await write('src/model.py', 'class Model: pass\n');
    await write('src/.gitignore', '*.tmp\n');
    await write('src/scratch.tmp', 'tmp');
    await write('README.md', 'scratch.tmp outside src is kept');
    await write('scratch.tmp', 'top level');
    await symlink('train.py', join(root, 'main.py'));

    const packed = await packDirectory(root);
    const listed = listTarball(packed.file);

    expect(listed).toEqual([
      '.gitignore',
      '.runctlignore',
      'README.md',
      'keep.log',
      'main.py',
      'scratch.tmp',
      'src/',
      'src/.gitignore',
      'src/checkpoints/',
      'src/checkpoints/module.py',
      'src/model.py',
      'train.py',
    ]);
    expect(packed.files).toBe(9); // the symlink is an entry, not a file
    await rm(dirname(packed.file), { recursive: true });
  });

  it('gives the same sha256 for the same files, whatever their times, and another for a changed file', async () => {
    await write('train.py', 'print(1)\n');
    await write('lib/util.py', 'x = 1\n');
    await chmod(join(root, 'train.py'), 0o755);

    const first = await packDirectory(root);
    await utimes(join(root, 'lib/util.py'), new Date('2020-01-01'), new Date('2020-01-01'));
    const touched = await packDirectory(root);
    await write('lib/util.py', 'x = 2\n');
    const changed = await packDirectory(root);

    expect(touched.sha256).toBe(first.sha256);
    expect(changed.sha256).not.toBe(first.sha256);
    expect(first.bytes).toBe((await readFile(first.file)).length);
    for (const p of [first, touched, changed]) await rm(dirname(p.file), { recursive: true });
  });

  it('round-trips contents, exec bits and long paths through the system tar', async () => {
    const deep = `${'a'.repeat(90)}/${'b'.repeat(90)}/${'c'.repeat(120)}.py`;
    await write(deep, 'deep = True\n');
    await write('run.sh', '#!/bin/sh\necho ok\n');
    await chmod(join(root, 'run.sh'), 0o755);
    const out = await mkdtemp(join(tmpdir(), 'runctl-unpack-'));

    const packed = await packDirectory(root);
    const extracted = spawnSync('tar', ['-xzf', packed.file, '-C', out], { encoding: 'utf8' });

    expect(extracted.status).toBe(0);
    expect(await readFile(join(out, deep), 'utf8')).toBe('deep = True\n');
    const run = spawnSync(join(out, 'run.sh'), { encoding: 'utf8' });
    expect(run.stdout).toBe('ok\n');
    await rm(out, { recursive: true });
    await rm(dirname(packed.file), { recursive: true });
  });
});
