import { awsModelDeps } from '../../shared/composition/models';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import { registerModel, type ModelDeps } from '../../shared/usecases/models';

/** POST /models/{name}/versions `{"runId": …}` — 201 with version n, its files and lineage. */
export const createHandler = (deps: () => ModelDeps) =>
  apiHandler(deps, async (event, d) => json(201, await registerModel({ owner: callerIdentity(event), name: pathParameter(event, 'name'), body: event.body }, d)), { jsonBody: true });

export const handler = createHandler(awsModelDeps);
