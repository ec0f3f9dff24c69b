import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fillVolumeCommand, mountVolumeCommand, unmountVolumeCommand, VOLUME_EXIT } from '../../shared/agent/volume-commands';

const VOLUME = 'vol-0123456789abcdef0';
const bin = mkdtempSync(join(tmpdir(), 'runctl-fake-aws-'));
afterAll(() => rmSync(bin, { recursive: true, force: true }));

/** Runs `script` with a fake `aws` that prints `listing` for list-objects-v2 and records its argv. */
function runWithListing(script: string, listing: string) {
  writeFileSync(join(bin, 'listing.txt'), listing);
  writeFileSync(join(bin, 'aws'), `#!/bin/bash\necho "$@" >> "${bin}/aws-calls.txt"\ncat "${bin}/listing.txt"\n`);
  chmodSync(join(bin, 'aws'), 0o755);
  rmSync(join(bin, 'aws-calls.txt'), { force: true });
  const result = spawnSync('bash', ['-c', script], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, RUNCTL_DEVICE_WAIT_TRIES: '1', RUNCTL_INSTANCE_ROOT: bin },
  });
  return { ...result, calls: spawnSync('cat', [join(bin, 'aws-calls.txt')], { encoding: 'utf8' }).stdout };
}

describe('fillVolumeCommand', () => {
  const script = fillVolumeCommand({ volumeId: VOLUME, datasetUri: 's3://datasets-bucket/imagenet', formatIfBlank: true });

  it('is valid bash and syncs the prefix with --delete, formatting only a blank device', () => {
    expect(spawnSync('bash', ['-n'], { input: script }).status).toBe(0);
    expect(script).toContain("prefix=imagenet/");
    expect(script).toContain('prepare_filesystem "$dev" yes');
    expect(script).toMatch(/blkid -p -o value -s TYPE/);
  });

  it.each([
    ['an empty listing', ''],
    ['the CLI\'s "None"', 'None\n'],
    ['folder markers only', 'imagenet/\t0\nimagenet/train/\t0\n'],
  ])('refuses %s as an empty dataset before touching any device', (_label, listing) => {
    const result = runWithListing(script, listing);

    expect(result.status).toBe(VOLUME_EXIT.datasetEmpty);
    expect(result.stderr).toContain('dataset s3://datasets-bucket/imagenet/ is empty');
    expect(result.calls).toContain('s3api list-objects-v2 --bucket datasets-bucket --prefix imagenet/');
  });

  it('goes on to find the device when the listing has objects (and says so when it is not attached)', () => {
    const result = runWithListing(script, 'imagenet/a.jpg\t10\nimagenet/train/\t0\nimagenet/b.jpg\t20\n');

    expect(result.status).toBe(VOLUME_EXIT.deviceNotFound);
    expect(result.stderr).toContain(`volume ${VOLUME} is not attached`);
  });

  it.each([
    ['access refused', 'An error occurred (AccessDenied) when calling the ListObjectsV2 operation: Access Denied', VOLUME_EXIT.accessDenied, 'access denied to s3://datasets-bucket/imagenet/: An error occurred (AccessDenied)'],
    ['any other failure', 'Could not connect to the endpoint URL', VOLUME_EXIT.syncFailed, 'cannot list s3://datasets-bucket/imagenet/: Could not connect'],
  ])('names a listing that fails with %s, before touching any device', (_label, error, code, message) => {
    writeFileSync(join(bin, 'aws'), `#!/bin/bash\necho "$@" >> "${bin}/aws-calls.txt"\necho ${JSON.stringify(error)} >&2\nexit 255\n`);
    chmodSync(join(bin, 'aws'), 0o755);
    const result = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, RUNCTL_INSTANCE_ROOT: bin } });

    expect(result.status).toBe(code);
    expect(result.stderr).toContain(message);
  });

  it('refuses what is not a volume id or an S3 prefix', () => {
    expect(() => fillVolumeCommand({ volumeId: 'vol-x; reboot', datasetUri: 's3://b/p/', formatIfBlank: true })).toThrow();
    expect(() => fillVolumeCommand({ volumeId: VOLUME, datasetUri: '/data', formatIfBlank: true })).toThrow();
  });
});

describe('mountVolumeCommand', () => {
  it('mounts read-only, never formats, and reads the device once only when asked', () => {
    const plain = mountVolumeCommand({ volumeId: VOLUME, mountPath: '/mnt/dataset', initialize: false });
    const warmed = mountVolumeCommand({ volumeId: VOLUME, mountPath: '/mnt/dataset', initialize: true });

    for (const script of [plain, warmed]) {
      expect(spawnSync('bash', ['-n'], { input: script }).status).toBe(0);
      expect(script).toContain('mount -o ro,noatime "$dev" "$mnt"');
      expect(script).toContain('prepare_filesystem "$dev" no');
      expect(script).toContain('/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${serial}');
    }
    expect(plain).not.toMatch(/fio|dd if=/);
    expect(warmed).toContain('fio --filename="$dev" --rw=read');
    expect(warmed).toContain('dd if="$dev" of=/dev/null');
  });

  it('fails with deviceNotFound when the volume is not attached', () => {
    const result = runWithListing(mountVolumeCommand({ volumeId: VOLUME, mountPath: '/mnt/dataset', initialize: false }), '');
    expect(result.status).toBe(VOLUME_EXIT.deviceNotFound);
  });

  it('refuses a mount path that would need quoting tricks', () => {
    expect(() => mountVolumeCommand({ volumeId: VOLUME, mountPath: '/data/$(reboot)', initialize: false })).toThrow();
    expect(() => unmountVolumeCommand('relative/path')).toThrow();
    expect(spawnSync('bash', ['-n'], { input: unmountVolumeCommand('/mnt/dataset') }).status).toBe(0);
  });
});
