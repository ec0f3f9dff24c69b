import type { IncomingHttpHeaders } from 'node:http';

/**
 * Which requests the dashboard server answers. Pure functions of the request, table-tested in
 * test/ui/request-guard.test.ts.
 */

/**
 * Why a request is refused, or undefined when it may be served.
 * - Host must name this server (127.0.0.1 or localhost, on its port): a DNS-rebinding page
 *   reaches 127.0.0.1 under its own host name, and is refused here.
 * - Origin, when the browser sends one, must be this server's: another site's scripts (fetch,
 *   a form post) are refused even though the browser would send them here.
 * - API calls must come from this origin (Sec-Fetch-Site same-origin, or none for a typed URL);
 *   a state-changing call must carry its Origin.
 */
export function refusal(headers: IncomingHttpHeaders, port: number, api: boolean, method = 'GET'): string | undefined {
  const own = [`127.0.0.1:${port}`, `localhost:${port}`];
  const host = headers.host;
  if (host === undefined || !own.includes(host.toLowerCase())) {
    return `Refused: Host "${host ?? ''}" is not this dashboard (open http://127.0.0.1:${port}/)`;
  }
  const origin = headers.origin;
  if (origin !== undefined && !own.some((o) => origin.toLowerCase() === `http://${o}`)) {
    return `Refused: requests from ${origin} may not use this dashboard`;
  }
  if (!api) return undefined;
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `Refused: a ${site} request may not call the dashboard's API`;
  }
  if (method !== 'GET' && method !== 'HEAD' && origin === undefined) {
    return `Refused: a ${method} to the dashboard's API must come from the dashboard page`;
  }
  return undefined;
}

// A path segment of an id or name; never `.` or `..`.
const ID = '(?!\\.{1,2}(?:/|$))[A-Za-z0-9._-]{1,128}';

/** The API calls the dashboard makes; nothing else is passed on (no submit, no uploads). */
const ALLOWED: ReadonlyArray<{ method: string; path: RegExp }> = [
  { method: 'GET', path: /^\/runs$/ },
  { method: 'GET', path: new RegExp(`^/runs/${ID}$`) },
  { method: 'GET', path: new RegExp(`^/runs/${ID}/(logs|metrics|checkpoints|outputs)$`) },
  { method: 'POST', path: new RegExp(`^/runs/${ID}/cancel$`) },
  { method: 'GET', path: /^\/(experiments|sweeps|models)$/ },
  { method: 'GET', path: new RegExp(`^/(experiments|sweeps|models)/${ID}(/${ID})?$`) },
];

/** Whether the dashboard may pass `method path` to the API. */
export function allowedApiCall(method: string, path: string): boolean {
  return ALLOWED.some((a) => a.method === method && a.path.test(path));
}
