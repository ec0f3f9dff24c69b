import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    motoEndpoint: string;
  }
}

/** Finds a free loopback port by binding port 0 and releasing it. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    try {
      const response = await fetch(url);
      if (response.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto_server did not answer at ${url} within ${deadlineMs} ms`);
}

let moto: ChildProcess | undefined;

/** Starts one moto_server for the whole test run; a missing moto_server fails the run, never skips it. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const probe = spawnSync('moto_server', ['--help'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'moto_server is required by the adapter tests and was not found on PATH. ' +
        'Install it with `pip install "moto[server]==5.*"` and run the tests again.',
    );
  }
  // The CLI bundle the CLI tests spawn: built once here, not by each spawned CLI at once.
  const { buildCli } = await import('../../scripts/build-cli.mjs');
  await buildCli();
  const port = await freePort();
  moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitForHttp(`${endpoint}/moto-api/`, 30_000);
  project.provide('motoEndpoint', endpoint);
  return async () => {
    moto?.kill('SIGTERM');
  };
}
