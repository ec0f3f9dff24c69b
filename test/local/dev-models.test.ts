import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli';
import { ROOT, startRunctlDev, type RunningDev } from '../support/runctl-dev';

/**
 * `runctl dev` serves the model registry: a real run of the linear example trains on the local
 * backend, and its outputs are registered, promoted and downloaded through the CLI.
 */
describe('runctl dev serves the model registry', { timeout: 300_000 }, () => {
  let dir: string;
  let dev: RunningDev;
  let env: Record<string, string>;
  const cli = (...args: string[]) => runCli(args, env, ROOT);

  beforeAll(async () => {
    dev = await startRunctlDev('runctl-dev-models-');
    dir = dev.dir;
    env = dev.env;
  }, 120_000);

  afterAll(async () => dev.stop());

  it('registers a finished run, promotes it and downloads the model it trained', async () => {
    expect(JSON.parse((await cli('models', 'ls', '--json')).stdout)).toEqual({ models: [] });

    const submitted = await cli('submit', 'examples/linear', '--entrypoint', 'train.py', '--hyperparameters', 'epochs=2', '--follow');
    expect(submitted.code, submitted.stderr).toBe(0);
    const runId = /^(r-[0-9a-f]+)$/m.exec(submitted.stdout)?.[1] ?? '';
    expect(runId).not.toBe('');

    const registered = await cli('models', 'register', runId, '--name', 'linear');
    expect(registered.code, registered.stderr).toBe(0);
    expect(registered.stdout.trim()).toBe('linear:1');
    expect((await cli('models', 'promote', 'linear', '1', '--stage', 'production')).code).toBe(0);
    expect((await cli('models', 'ls')).stdout).toMatch(/^linear\s+1\s+production=1\s/m);

    const to = join(dir, 'linear');
    const downloaded = await cli('models', 'download', 'linear', 'production', '--to', to, '--json');
    expect(downloaded.code, downloaded.stderr).toBe(0);
    const answer: unknown = JSON.parse(downloaded.stdout);
    expect(answer).toMatchObject({ name: 'linear', version: 1, files: expect.arrayContaining([expect.objectContaining({ path: 'model.json' })]) });
    const bytes = await readFile(join(to, 'model.json'));
    const listed = (await cli('models', 'show', 'linear', '--version', '1', '--json')).stdout;
    expect(listed).toContain(createHash('sha256').update(bytes).digest('hex'));
    expect(JSON.parse(bytes.toString('utf8'))).toMatchObject({ epochs: 2 });
  });
});
