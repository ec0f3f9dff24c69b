import { awsModelDeps } from '../../shared/composition/models';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import { promoteModel, type ModelDeps } from '../../shared/usecases/models';

/** POST /models/{name}/promote `{"version": 3, "stage": "production"}` — the stage now holds that version. */
export const createHandler = (deps: () => Pick<ModelDeps, 'models' | 'clock'>) =>
  apiHandler(deps, async (event, d) => json(200, await promoteModel({ owner: callerIdentity(event), name: pathParameter(event, 'name'), body: event.body }, d)), { jsonBody: true });

export const handler = createHandler(awsModelDeps);
