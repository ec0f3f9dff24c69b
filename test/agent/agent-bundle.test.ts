import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AgentWorld, BUCKET, type LaunchOptions } from './agent-harness';

// Real bash, Python and AWS CLI processes on a loaded 2-core machine.
vi.setConfig({ testTimeout: 120_000 });

/**
 * The agent re-hashes the bundle it downloaded against the sha256 in its name and unpacks only
 * plain files and directories inside the code directory, within the size and entry caps. Each
 * refusal is Run.PrecheckFailed naming what is wrong, and nothing runs.
 */
const world = new AgentWorld();
beforeAll(() => world.start());
afterAll(() => world.stop());

/** A .tar.gz built by Python's tarfile from a short script over `tar` (a TarFile open for writing). */
function tarball(script: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'runctl-bad-bundle-'));
  try {
    const file = join(dir, 'bundle.tar.gz');
    execFileSync('python3', ['-c', `import io, tarfile\nwith tarfile.open(${JSON.stringify(file)}, 'w:gz') as tar:\n${script.replace(/^/gm, '    ')}`]);
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ADD_TRAIN = `info = tarfile.TarInfo('train.py'); body = b'print(1)\\n'; info.size = len(body); tar.addfile(info, io.BytesIO(body))`;

async function launchWith(bundleUri: string, config: LaunchOptions['config'] = {}) {
  const before = world.codeBundle;
  world.codeBundle = bundleUri;
  try {
    const run = await world.launch({ env: { FIXTURE_MODE: 'periodic' }, config });
    return { run, outcome: await run.outcome };
  } finally {
    world.codeBundle = before;
  }
}

function causeOf(outcome: unknown): string {
  return JSON.stringify(outcome);
}

describe('agent: the code bundle', () => {
  it('unpacks files, directories and links that stay inside the code directory, and trains', async () => {
    const fixtures = join(import.meta.dirname, '..', 'fixtures', 'scripts');
    const uri = await world.putBundle(
      tarball(
        `tar.add(${JSON.stringify(fixtures)}, arcname='.')\n` +
          `info = tarfile.TarInfo('alias.py'); info.type = tarfile.SYMTYPE; info.linkname = 'train.py'; tar.addfile(info)`,
      ),
    );
    const before = world.codeBundle;
    world.codeBundle = uri;
    try {
      const run = await world.launch({ env: { FIXTURE_MODE: 'periodic' }, argv: ['python3', 'alias.py'] });
      expect(await run.outcome).toMatchObject({ kind: 'success' });
    } finally {
      world.codeBundle = before;
    }
  });

  it('refuses a bundle whose bytes do not match the sha256 in its name (changed after upload)', async () => {
    const good = tarball(ADD_TRAIN);
    const other = tarball(`${ADD_TRAIN}\ninfo = tarfile.TarInfo('extra.py'); info.size = 0; tar.addfile(info, io.BytesIO(b''))`);
    // The other bytes stored under the first bundle's name.
    const uri = await world.putBundle(good);
    await world.put(uri.slice(`s3://${BUCKET}/`.length), other);

    const { run, outcome } = await launchWith(uri);

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Run.PrecheckFailed' });
    expect(causeOf(outcome)).toContain('does not match its sha256');
    expect(existsSync(join(run.root, 'opt/runctl/output/received.json'))).toBe(false);
  });

  it('refuses a member that would land outside the code directory, and writes nothing there', async () => {
    const uri = await world.putBundle(
      tarball(`${ADD_TRAIN}\ninfo = tarfile.TarInfo('../../escaped.txt'); info.size = 3; tar.addfile(info, io.BytesIO(b'pwn'))`),
    );

    const { run, outcome } = await launchWith(uri);

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Run.PrecheckFailed' });
    expect(causeOf(outcome)).toContain("member '../../escaped.txt' would be written outside the code directory");
    expect(execFileSync('find', [run.root, '-name', 'escaped.txt']).toString()).toBe('');
  });

  it('refuses links that point outside the code directory and special files; keeps links inside it', async () => {
    const outside = await world.putBundle(
      tarball(`${ADD_TRAIN}\ninfo = tarfile.TarInfo('passwd'); info.type = tarfile.SYMTYPE; info.linkname = '/etc/passwd'; tar.addfile(info)`),
    );
    const escaping = await world.putBundle(
      tarball(`${ADD_TRAIN}\ninfo = tarfile.TarInfo('lib/up'); info.type = tarfile.SYMTYPE; info.linkname = '../../..'; tar.addfile(info)`),
    );
    const fifo = await world.putBundle(tarball(`${ADD_TRAIN}\ninfo = tarfile.TarInfo('pipe'); info.type = tarfile.FIFOTYPE; tar.addfile(info)`));

    for (const [uri, message] of [
      [outside, "link 'passwd' points outside the code directory (/etc/passwd)"],
      [escaping, "link 'lib/up' points outside the code directory (../../..)"],
      [fifo, "member 'pipe' is a device or FIFO"],
    ] as const) {
      const { outcome } = await launchWith(uri);
      expect(outcome).toMatchObject({ kind: 'failure', error: 'Run.PrecheckFailed' });
      expect(causeOf(outcome)).toContain(message);
    }
  });

  it('refuses a bundle over its entry or unpacked-size cap', async () => {
    const uri = await world.putBundle(
      tarball(`${ADD_TRAIN}\nfor i in range(20):\n    info = tarfile.TarInfo('f/%d' % i); info.size = 1000; tar.addfile(info, io.BytesIO(b'x' * 1000))`),
    );

    const entries = await launchWith(uri, { bundleLimits: { maxEntries: 20 } });
    expect(entries.outcome).toMatchObject({ kind: 'failure', error: 'Run.PrecheckFailed' });
    expect(causeOf(entries.outcome)).toContain('has 21 entries, over the limit of 20');

    const bytes = await launchWith(uri, { bundleLimits: { maxUnpackedBytes: 10_000 } });
    expect(bytes.outcome).toMatchObject({ kind: 'failure', error: 'Run.PrecheckFailed' });
    expect(causeOf(bytes.outcome)).toContain('unpacks to 20009 bytes, over the limit of 10000');
  });

  it('says so when the bundle is not a gzip tar archive', async () => {
    const uri = await world.putBundle(Buffer.from('#!/bin/sh\necho not an archive\n'));

    const { outcome } = await launchWith(uri);

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Run.PrecheckFailed' });
    expect(causeOf(outcome)).toContain('is not a gzip tar archive');
  });
});
