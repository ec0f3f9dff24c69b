import { awsModelDeps } from '../../shared/composition/models';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { listModels, type ModelDeps } from '../../shared/usecases/models';

/** GET /models — the caller's models, by name. */
export const createHandler = (deps: () => Pick<ModelDeps, 'models'>) =>
  apiHandler(deps, async (event, d) => json(200, await listModels({ owner: callerIdentity(event), query: event.queryStringParameters }, d)));

export const handler = createHandler(awsModelDeps);
