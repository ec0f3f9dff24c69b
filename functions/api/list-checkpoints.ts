import { awsBucketApiDeps, type ApiDeps } from '../../shared/composition/api';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import { listRunCheckpoints, type RunsBucketDeps } from '../../shared/usecases/run-artifacts';

/** GET /runs/{id}/checkpoints — the complete checkpoints, newest first, and which one is latest. */
export const createHandler = (deps: () => ApiDeps & RunsBucketDeps) =>
  apiHandler(deps, async (event, d) =>
    json(200, await listRunCheckpoints({ owner: callerIdentity(event), runId: pathParameter(event, 'id') }, d)),
  );

export const handler = createHandler(awsBucketApiDeps);
