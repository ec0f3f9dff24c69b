import { awsModelDeps } from '../../shared/composition/models';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import { downloadModel, type ModelDeps } from '../../shared/usecases/models';

/** GET /models/{name}/versions/{version}/download — each file's URL and sha256 ({version} may be a stage). */
export const createHandler = (deps: () => Pick<ModelDeps, 'models' | 'blobs'>) =>
  apiHandler(deps, async (event, d) =>
    json(200, await downloadModel({ owner: callerIdentity(event), name: pathParameter(event, 'name'), version: pathParameter(event, 'version') }, d)),
  );

export const handler = createHandler(awsModelDeps);
