import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * Stable loopback ports for what a local instance talks to (S3, DynamoDB, the agent routes,
 * the metadata service, the secrets endpoint). The emulators listen on fresh ports at every start, but an
 * instance keeps the endpoints it was launched with for its whole life, like an EC2 instance
 * keeps talking to the same regional endpoints. So each endpoint is a small TCP forwarder whose
 * port is recorded in `<root>/endpoints.json` and taken again at the next start: an agent that
 * outlived a control-plane restart reaches the new emulators through the same address.
 */

export const ENDPOINT_NAMES = ['s3', 'dynamodb', 'control', 'imds', 'secrets'] as const;
export type EndpointName = (typeof ENDPOINT_NAMES)[number];

const PortsSchema = z.record(z.string(), z.number().int().min(1).max(65_535));

export interface StableEndpoints {
  /** `http://127.0.0.1:<stable port>` per endpoint. */
  urls: Record<EndpointName, string>;
  close(): Promise<void>;
}

/** Starts one forwarder per target (`http://127.0.0.1:<port>` of the real server), on the recorded ports when free. */
export async function startStableEndpoints(
  root: string,
  targets: Record<EndpointName, string>,
): Promise<StableEndpoints> {
  const file = join(root, 'endpoints.json');
  const recorded = await readPorts(file);
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const urls: Partial<Record<EndpointName, string>> = {};
  const ports: Record<string, number> = {};
  try {
    for (const name of ENDPOINT_NAMES) {
      const target = new URL(targets[name]);
      const server = createServer((client) => {
        const upstream = connect(Number(target.port), target.hostname);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          // A reset on one side ends the other; the instance's client retries like any AWS client.
          socket.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream);
        upstream.pipe(client);
      });
      const port = await listen(server, recorded[name]);
      servers.push(server);
      ports[name] = port;
      urls[name] = `http://127.0.0.1:${port}`;
    }
  } catch (error) {
    await closeAll(servers, sockets);
    throw error;
  }
  await mkdir(root, { recursive: true });
  await writeFile(`${file}.tmp`, JSON.stringify(ports, null, 2));
  await rename(`${file}.tmp`, file);
  return {
    urls: { s3: need(urls.s3), dynamodb: need(urls.dynamodb), control: need(urls.control), imds: need(urls.imds), secrets: need(urls.secrets) },
    close: () => closeAll(servers, sockets),
  };
}

function need(url: string | undefined): string {
  if (url === undefined) throw new Error('an endpoint forwarder did not start');
  return url;
}

async function readPorts(file: string): Promise<Record<string, number>> {
  try {
    const parsed = PortsSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

/** Listens on `preferred` (a port from the last start) or, when it is taken, on a free one. */
async function listen(server: Server, preferred: number | undefined): Promise<number> {
  const attempt = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      server.once('error', onError);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onError);
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  if (preferred !== undefined) {
    try {
      return await attempt(preferred);
    } catch {
      // Taken by something else since: instances launched before lose their endpoint; new ones get the new port.
    }
  }
  return attempt(0);
}

async function closeAll(servers: Server[], sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
}
