import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes, so the server has one page and the back button works:
 * `#/` runs · `#/runs/<id>` one run · `#/experiments`, `#/models` when the API has them.
 */
export type Route =
  | { page: 'runs'; status?: string; experiment?: string }
  | { page: 'run'; runId: string };

export function parseRoute(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(search);
  const run = /^\/runs\/([A-Za-z0-9._-]+)$/.exec(path);
  if (run?.[1] !== undefined) return { page: 'run', runId: run[1] };
  return { page: 'runs', status: params.get('status') ?? undefined, experiment: params.get('experiment') ?? undefined };
}

export function runsHref(filter: { status?: string; experiment?: string }): string {
  const params = new URLSearchParams();
  if (filter.status) params.set('status', filter.status);
  if (filter.experiment) params.set('experiment', filter.experiment);
  const search = params.toString();
  return `#/${search === '' ? '' : `?${search}`}`;
}

export function runHref(runId: string): string {
  return `#/runs/${encodeURIComponent(runId)}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
