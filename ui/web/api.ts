/**
 * The dashboard's calls to its own server (`/api/…`, passed on to the runctl API). GETs are
 * conditional: the last ETag of each URL goes along as If-None-Match, and a 304 answers
 * `changed: false` with the data already held, so an unchanged run is not re-rendered.
 */

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | undefined>;

const validators = new Map<string, { etag: string; data: unknown }>();

function urlOf(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, String(value));
  const search = params.toString();
  return `/api${path}${search === '' ? '' : `?${search}`}`;
}

async function failure(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body: unknown = await response.json();
    if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') message = body.message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(message, response.status);
}

/** GET with If-None-Match; `changed` is false when the server answered 304. */
export async function getJson<T>(path: string, query?: Query): Promise<{ data: T; changed: boolean }> {
  const url = urlOf(path, query);
  const known = validators.get(url);
  const response = await fetch(url, { headers: known === undefined ? {} : { 'if-none-match': known.etag }, cache: 'no-store' });
  if (response.status === 304 && known !== undefined) return { data: known.data as T, changed: false };
  if (!response.ok) throw await failure(response);
  const data = (await response.json()) as T;
  const etag = response.headers.get('etag');
  if (etag !== null) validators.set(url, { etag, data });
  return { data, changed: true };
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  const response = await fetch(urlOf(path), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

/** Forgets validators of URLs under a path (a page left behind no longer needs them). */
export function forget(prefix: string): void {
  for (const url of validators.keys()) if (url.startsWith(`/api${prefix}`)) validators.delete(url);
}

/**
 * Every item of a paginated listing, up to `max`, each page a conditional GET. `changed` is false
 * when every page answered 304: the caller keeps what it shows.
 */
export async function getAllPages<P extends { nextToken?: string }, T>(
  path: string,
  items: (page: P) => T[],
  options: { limit: number; max: number; query?: Query },
): Promise<{ items: T[]; first: P; changed: boolean; truncated: boolean }> {
  const all: T[] = [];
  let changed = false;
  let token: string | undefined;
  let first: P | undefined;
  do {
    const { data, changed: pageChanged } = await getJson<P>(path, { ...options.query, limit: options.limit, nextToken: token });
    first ??= data;
    changed ||= pageChanged;
    all.push(...items(data));
    token = data.nextToken;
  } while (token !== undefined && all.length < options.max);
  if (first === undefined) throw new ApiError(`No answer from ${path}`, 502);
  return { items: all.slice(0, options.max), first, changed, truncated: token !== undefined };
}

/** The message to show for a failed read: a 404 says the thing is not there (or not the caller's). */
export function problem(error: unknown, notFound: string): string {
  if (error instanceof ApiError && error.status === 404) return notFound;
  return error instanceof Error ? error.message : String(error);
}
