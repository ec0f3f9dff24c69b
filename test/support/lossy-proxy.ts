import { request as httpRequest, createServer, type IncomingMessage, type Server } from 'node:http';
import { freePort } from './global-setup';

/**
 * An HTTP proxy in front of an emulator that can lose answers: a request it is told to drop is
 * forwarded and carried out by the emulator, its whole answer read, and then the client's
 * connection is destroyed — what the SDK sees when a reply is lost on the network after AWS did
 * the work ("socket hang up", ECONNRESET). Every other request passes through unchanged.
 */
export interface LossyProxy {
  endpoint: string;
  /**
   * Drops the answers of the next `times` requests that `match` accepts. `target` is the
   * `X-Amz-Target` header (e.g. `DynamoDB_20120810.UpdateItem`), `body` the request body.
   */
  dropAnswers(match: (target: string, body: string) => boolean, times: number): void;
  /** Requests whose answer was dropped, as their targets. */
  readonly dropped: string[];
  close(): Promise<void>;
}

export async function startLossyProxy(upstream: string): Promise<LossyProxy> {
  const target = new URL(upstream);
  const rules: Array<{ match: (target: string, body: string) => boolean; left: number }> = [];
  const dropped: string[] = [];

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const amzTarget = String(req.headers['x-amz-target'] ?? '');
      const rule = rules.find((r) => r.left > 0 && r.match(amzTarget, body.toString('utf8')));
      if (rule !== undefined) rule.left -= 1;
      const forwarded = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (answer: IncomingMessage) => {
          const answerChunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => answerChunks.push(chunk));
          answer.on('end', () => {
            if (rule !== undefined) {
              dropped.push(amzTarget);
              req.socket.destroy();
              return;
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(answerChunks));
          });
        },
      );
      forwarded.on('error', () => req.socket.destroy());
      forwarded.end(body);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    dropAnswers(match, times) {
      rules.push({ match, left: times });
    },
    dropped,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
