import type { Server } from 'node:http';

/** A server listening on the loopback interface. */
export interface LoopbackListener {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  /**
   * Stops it. Kept-alive connections (every SDK client holds some) are dropped rather than waited
   * for, or a close would hang until each client gave up its socket.
   */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (port 0, the default: a free one); rejects when the port cannot be had. */
export async function listenLoopback(server: Server, port = 0): Promise<LoopbackListener> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('a loopback server has no TCP port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
