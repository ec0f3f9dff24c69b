import { awsModelDeps } from '../../shared/composition/models';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import { showModel, type ModelDeps } from '../../shared/usecases/models';

/** GET /models/{name} — the model, its versions and the history of its stages. */
export const createHandler = (deps: () => Pick<ModelDeps, 'models'>) =>
  apiHandler(deps, async (event, d) => json(200, await showModel({ owner: callerIdentity(event), name: pathParameter(event, 'name') }, d)));

export const handler = createHandler(awsModelDeps);
