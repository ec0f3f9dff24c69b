import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

/** A `runctl dev` process on a free port, with its own HOME and backend root under `dir`. */
export interface RunningDev {
  url: string;
  /** The temporary directory: HOME, and the backend root at `<dir>/root`. */
  dir: string;
  /** The environment a `runctl` command needs to reach it (endpoint, HOME, no config file). */
  env: Record<string, string>;
  process: ChildProcess;
  /** Stops it with Ctrl-C, as a user would, and removes `dir`. */
  stop(): Promise<void>;
}

/** Starts `bin/runctl.mjs dev --port 0` as a user runs it, and waits for the URL it prints. */
export async function startRunctlDev(prefix: string): Promise<RunningDev> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const dev = spawn(process.execPath, [join(ROOT, 'bin/runctl.mjs'), 'dev', '--port', '0', '--root', join(dir, 'root')], {
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
  return {
    url,
    dir,
    env: { HOME: dir, RUNCTL_ENDPOINT: url, RUNCTL_CONFIG: join(dir, 'none.json'), RUNCTL_POLL_INTERVAL_MS: '250' },
    process: dev,
    stop: async () => {
      if (dev.exitCode === null) {
        const exited = new Promise((done) => dev.once('exit', done));
        dev.kill('SIGINT');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
