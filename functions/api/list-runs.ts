import { awsApiDeps, type ApiDeps } from '../../shared/composition/api';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { listRuns } from '../../shared/usecases/query-runs';

/** GET /runs?status=&limit=&nextToken= — the caller's runs, newest first. */
export const createHandler = (deps: () => ApiDeps) =>
  apiHandler(deps, async (event, d) =>
    json(200, await listRuns({ owner: callerIdentity(event), query: event.queryStringParameters }, d)),
  );

export const handler = createHandler(awsApiDeps);
