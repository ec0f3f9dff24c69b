import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * `runctl dev` serves the model registry: a real run of the linear example trains on the local
 * backend, and its outputs are registered, promoted and downloaded through the CLI.
 */
describe('runctl dev serves the model registry', { timeout: 300_000 }, () => {
  let dir: string;
  let dev: ChildProcess;
  let env: Record<string, string>;
  const cli = (...args: string[]) => runCli(args, env, ROOT);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'runctl-dev-models-'));
    dev = spawn(process.execPath, [join(ROOT, 'bin/runctl.mjs'), 'dev', '--port', '0', '--root', join(dir, 'root')], {
      cwd: ROOT,
      env: { ...process.env, HOME: dir, POWERTOOLS_LOG_LEVEL: 'SILENT' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((found, failed) => {
      let out = '';
      dev.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /API on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
        if (match !== undefined) found(match);
      });
      dev.once('exit', (code) => failed(new Error(`runctl dev exited ${String(code)}: ${out}`)));
    });
    env = { HOME: dir, RUNCTL_ENDPOINT: url, RUNCTL_CONFIG: join(dir, 'none.json'), RUNCTL_POLL_INTERVAL_MS: '250' };
  }, 120_000);

  afterAll(async () => {
    if (dev.exitCode === null) {
      const exited = new Promise((done) => dev.once('exit', done));
      dev.kill('SIGINT');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

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
