import { awsApiDeps, type ApiDeps } from '../../shared/composition/api';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import { getOwnedRun, toView } from '../../shared/usecases/query-runs';

/** GET /runs/{id} — 404 for a run that is not the caller's. */
export const createHandler = (deps: () => ApiDeps) =>
  apiHandler(deps, async (event, d) =>
    json(200, toView(await getOwnedRun({ owner: callerIdentity(event), runId: pathParameter(event, 'id') }, d))),
  );

export const handler = createHandler(awsApiDeps);
