import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { npmStart } from '../support/npm-start';

let root: string | undefined;
afterEach(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
  root = undefined;
});

describe('npm start', () => {
  it('trains the example to SUCCEEDED through one simulated spot interruption, resumed after the held epoch', async () => {
    root = await mkdtemp(join(tmpdir(), 'runctl-npm-start-'));
    const { code, stdout, stderr } = await npmStart(['--root', root, '--epochs', '6'], 240_000);

    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/⚡ spot interruption warning for i-\S+ \(attempt 1\)/);
    expect(stdout).toMatch(/^Status {6}SUCCEEDED$/m);
    expect(stdout).toMatch(/^Attempts {4}2$/m);
    expect(stdout).toMatch(/^ {2}#1 .* ended: SPOT_INTERRUPTED/m);
    expect(stdout).toMatch(/^ {2}#2 .* ended: SUCCEEDED {2}\(resumed from s3:\/\/\S+\/checkpoints\/0001-\d{6}\/\)$/m);
    expect(stdout).toMatch(/^Resumed {5}after epoch 3$/m);
    expect(stdout).toMatch(/^Outputs {5}s3:\/\/\S+\/outputs\//m);
  }, 300_000);

  it('with --no-interrupt: one attempt trains every epoch', async () => {
    root = await mkdtemp(join(tmpdir(), 'runctl-npm-start-'));
    const { code, stdout, stderr } = await npmStart(['--root', root, '--epochs', '2', '--no-interrupt'], 180_000);

    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).not.toContain('spot interruption warning');
    expect(stdout).toMatch(/^Attempts {4}1$/m);
    expect(stdout).toMatch(/^Resumed {5}no \(one attempt ran every epoch\)$/m);
  }, 240_000);

  it('refuses a bad --epochs with the usage, exit 2', async () => {
    const { code, stderr } = await npmStart(['--epochs', '1'], 60_000);
    expect(code).toBe(2);
    expect(stderr).toContain('--epochs must be a whole number of at least 2, got 1');
    expect(stderr).toContain('usage: npm start --');
  }, 90_000);
});
