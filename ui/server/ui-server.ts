import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { UiAssets } from './assets';
import { allowedApiCall, refusal } from './request-guard';

/**
 * `runctl ui`: the dashboard on 127.0.0.1. The page only ever talks to this server; the server
 * passes the API calls the dashboard makes to the runctl API through the CLI's own client, which
 * signs them with the user's AWS credentials (or calls `runctl dev` unsigned). So the page never
 * holds a credential, and a request that does not come from the page itself — another site in
 * the same browser, or a DNS-rebound host name — is refused before it reaches the API.
 */

/** What the server needs of the API client: one request, its answer as it came. */
export interface UiApi {
  readonly endpoint: string;
  send(method: string, path: string, options?: { query?: Record<string, string>; body?: unknown }): Promise<{ status: number; text: string }>;
}

export interface UiServerOptions {
  api: UiApi;
  assets: UiAssets;
  /** 0 picks a free port. */
  port: number;
  /** Whether the API is `runctl dev` (shown on the page). */
  local: boolean;
  /** Told of each refused request (`runctl ui` prints them). */
  onRefused?: (line: string) => void;
}

export interface RunningUi {
  /** `http://127.0.0.1:<port>/`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The dashboard loads nothing but its own files and its own /api. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  // uPlot and Preact set element.style from script, which style-src does not govern; no inline <style>.
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Largest request body passed on (a cancel is a few bytes). */
const MAX_BODY_BYTES = 64 * 1024;

/** Starts the dashboard server on the loopback interface. */
export async function startUiServer(options: UiServerOptions): Promise<RunningUi> {
  let port = options.port;
  const server = createServer((request, response) => {
    handle(request, response, options, port).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      if (!response.headersSent) writeJson(response, 502, { message });
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  port = typeof address === 'object' && address !== null ? address.port : options.port;
  return { url: `http://127.0.0.1:${port}/`, port, close: () => closeServer(server) };
}

async function handle(request: IncomingMessage, response: ServerResponse, options: UiServerOptions, port: number): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://127.0.0.1');
  const method = request.method ?? 'GET';
  const refused = refusal(request.headers, port, url.pathname.startsWith('/api/'), method);
  if (refused !== undefined) {
    options.onRefused?.(`${method} ${url.pathname}: ${refused}`);
    writeJson(response, 403, { message: refused });
    return;
  }

  if (url.pathname === '/config.json' && (method === 'GET' || method === 'HEAD')) {
    writeJson(response, 200, { endpoint: options.api.endpoint, local: options.local });
    return;
  }
  if (url.pathname.startsWith('/api/')) {
    await proxy(request, response, url, method, options.api);
    return;
  }
  const asset = options.assets.get(url.pathname === '/index.html' ? '/' : url.pathname);
  if (asset === undefined || (method !== 'GET' && method !== 'HEAD')) {
    writeJson(response, asset === undefined ? 404 : 405, { message: asset === undefined ? 'Not Found' : 'Method Not Allowed' });
    return;
  }
  const headers = { ...SECURITY_HEADERS, 'content-type': asset.contentType, etag: asset.etag, 'cache-control': 'no-cache' };
  if (request.headers['if-none-match'] === asset.etag) {
    response.writeHead(304, headers).end();
    return;
  }
  response.writeHead(200, { ...headers, 'content-length': String(asset.body.length) }).end(method === 'HEAD' ? undefined : asset.body);
}

/**
 * Passes one dashboard call to the API. GET answers carry an ETag of their body: the page polls
 * with If-None-Match and an unchanged run costs it a 304 and no re-render.
 */
async function proxy(request: IncomingMessage, response: ServerResponse, url: URL, method: string, api: UiApi): Promise<void> {
  const path = url.pathname.slice('/api'.length);
  if (!allowedApiCall(method, path)) {
    writeJson(response, 404, { message: `The dashboard does not call ${method} ${path}` });
    return;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = value;
  let body: unknown;
  if (method === 'POST') {
    const text = await readBody(request);
    if (text === undefined) {
      writeJson(response, 413, { message: 'Request body too large' });
      return;
    }
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      writeJson(response, 400, { message: 'The request body must be JSON' });
      return;
    }
  }
  const answer = await api.send(method, path, { query, body });
  const headers: Record<string, string> = { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
  if (method === 'GET' && answer.status === 200) {
    const etag = `"${createHash('sha1').update(answer.text).digest('base64url')}"`;
    headers.etag = etag;
    if (request.headers['if-none-match'] === etag) {
      response.writeHead(304, headers).end();
      return;
    }
  }
  response.writeHead(answer.status, headers).end(answer.text);
}

async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function writeJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}
