import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import { ConflictError, NotFoundError } from '../shared/errors';
import type { LocalBackend, LocalBackendOptions } from './runtime';
import { registerRawImports } from './runtime-raw-imports';

/**
 * `runctl dev`: the local backend plus the HTTP API on localhost, served by the real route
 * handlers over the local dependencies, so `runctl submit`, `ls`, `status`, `logs -f` and
 * `cancel` work against it with `--endpoint <url>`. Every request is signed in as the local
 * user (the owner `npm start` submits as). One local-only route, `POST /local/runs/{id}/interrupt`,
 * simulates a spot interruption (`runctl local interrupt <run>`). The URL is written to
 * `<root>/dev.json` so other commands find the running server.
 */

export interface DevOptions extends LocalBackendOptions {
  /** Port of the API (default 4567; 0 picks a free one). */
  port?: number;
  /** Where to print the endpoint (default console.log). */
  print?: (line: string) => void;
}

export interface RunningDev {
  url: string;
  backend: LocalBackend;
  close(): Promise<void>;
}

export const DEV_FILE = 'dev.json';

export async function startDev(options: DevOptions = {}): Promise<RunningDev> {
  // The agent's command builders import its script with `?raw`; teach Node the suffix first.
  registerRawImports();
  const { startLocalBackend, LOCAL_OWNER } = await import('./runtime');
  const { startHttpApi } = await import('./http-api');
  const backend = await startLocalBackend(options);
  let api;
  try {
    api = await startHttpApi({
      port: options.port ?? 4567,
      deps: backend.apiDeps(),
      experiments: backend.experimentDeps(),
      models: backend.modelDeps(),
      sweeps: backend.sweepDeps(),
      identity: LOCAL_OWNER,
      extraRoutes: {
        'POST /local/runs/{id}/interrupt': async (event): Promise<APIGatewayProxyResultV2> => {
          const runId = event.pathParameters?.id ?? '';
          try {
            const result = await backend.interrupt(runId);
            return json(202, result);
          } catch (error) {
            if (error instanceof NotFoundError) return json(404, { message: error.message });
            if (error instanceof ConflictError) return json(409, { message: error.message });
            return json(500, { message: 'Interrupting the run failed; see the runctl dev output' });
          }
        },
      },
    });
  } catch (error) {
    await backend.stop();
    throw error;
  }
  const devFile = join(backend.root, DEV_FILE);
  await writeFile(devFile, JSON.stringify({ url: api.url, pid: process.pid }));
  const print = options.print ?? ((line: string) => console.log(line));
  print(`runctl dev: API on ${api.url} (state under ${backend.root})`);
  print(`  runctl --endpoint ${api.url} ls`);
  if (backend.resumed.length > 0) print(`  resumed ${backend.resumed.length} live run(s): ${backend.resumed.join(', ')}`);
  return {
    url: api.url,
    backend,
    close: async () => {
      await api.close();
      await rm(devFile, { force: true });
      await backend.stop();
    },
  };
}

function json(statusCode: number, body: unknown): APIGatewayProxyResultV2 {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}
