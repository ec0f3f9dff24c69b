import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dockerForTests } from '../support/docker';
import { npmStart } from '../support/npm-start';

const docker = await dockerForTests();

describe.skipIf(docker === undefined)('npm start -- --docker', () => {
  let root: string | undefined;
  afterAll(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('builds the example image, trains in containers through one interruption and resumes: SUCCEEDED', async () => {
    root = await mkdtemp(join(tmpdir(), 'runctl-npm-start-docker-'));
    const { code, stdout, stderr } = await npmStart(['--docker', '--root', root, '--epochs', '5'], 540_000);

    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/⚡ spot interruption warning for i-\S+ \(attempt 1\)/);
    expect(stdout).toMatch(/^Status {6}SUCCEEDED$/m);
    expect(stdout).toMatch(/^Attempts {4}2$/m);
    expect(stdout).toMatch(/^Resumed {5}after epoch 3$/m);
  }, 600_000);
});
