import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { freePort } from './global-setup';

interface DynaliteOptions {
  /** How long a new table stays CREATING; 0 makes it ACTIVE at once. */
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}

type DynaliteFactory = (options: DynaliteOptions) => Server;

function isDynaliteFactory(value: unknown): value is DynaliteFactory {
  return typeof value === 'function';
}

// dynalite is CommonJS and ships no types.
const loaded: unknown = createRequire(import.meta.url)('dynalite');
if (!isDynaliteFactory(loaded)) throw new Error('dynalite did not export its server factory');
const createDynalite = loaded;

export interface RunningDynalite {
  endpoint: string;
  close(): Promise<void>;
}

/** Starts dynalite in this process on a free loopback port, with an in-memory store. */
export async function startDynalite(): Promise<RunningDynalite> {
  const server = createDynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets of SDK clients would otherwise hold the close open.
        server.closeAllConnections();
      }),
  };
}
