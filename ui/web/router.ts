import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes, so the server has one page and the back button works:
 * `#/` runs · `#/runs/<id>` one run · `#/experiments` and `#/experiments/<name>` ·
 * `#/sweeps/<id>` · `#/models` and `#/models/<name>`.
 */
export type Route =
  | { page: 'runs'; status?: string; experiment?: string }
  | { page: 'run'; runId: string }
  | { page: 'experiments' }
  | { page: 'experiment'; name: string }
  | { page: 'sweep'; sweepId: string }
  | { page: 'models' }
  | { page: 'model'; name: string };

const SEGMENT = '([A-Za-z0-9._-]+)';

export function parseRoute(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(search);
  const one = (prefix: string) => new RegExp(`^/${prefix}/${SEGMENT}$`).exec(path)?.[1];
  const run = one('runs');
  if (run !== undefined) return { page: 'run', runId: run };
  if (path === '/experiments') return { page: 'experiments' };
  const experiment = one('experiments');
  if (experiment !== undefined) return { page: 'experiment', name: experiment };
  const sweep = one('sweeps');
  if (sweep !== undefined) return { page: 'sweep', sweepId: sweep };
  if (path === '/models') return { page: 'models' };
  const model = one('models');
  if (model !== undefined) return { page: 'model', name: model };
  return { page: 'runs', status: params.get('status') ?? undefined, experiment: params.get('experiment') ?? undefined };
}

/** What identifies the page shown: moving to another puts the focus on its heading. */
export function routeKey(route: Route): string {
  switch (route.page) {
    case 'run':
      return `run/${route.runId}`;
    case 'experiment':
    case 'model':
      return `${route.page}/${route.name}`;
    case 'sweep':
      return `sweep/${route.sweepId}`;
    default:
      return route.page;
  }
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

export function experimentHref(name: string): string {
  return `#/experiments/${encodeURIComponent(name)}`;
}

export function sweepHref(sweepId: string): string {
  return `#/sweeps/${encodeURIComponent(sweepId)}`;
}

export function modelHref(name: string): string {
  return `#/models/${encodeURIComponent(name)}`;
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
