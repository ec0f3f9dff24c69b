import { awsBucketApiDeps, type ApiDeps } from '../../shared/composition/api';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import type { RunsBucketDeps } from '../../shared/usecases/run-artifacts';
import { listRunOutputs } from '../../shared/usecases/run-outputs';

/** GET /runs/{id}/outputs?limit=&nextToken= — the run's output files (path, size) and its outputs manifest. */
export const createHandler = (deps: () => ApiDeps & RunsBucketDeps) =>
  apiHandler(deps, async (event, d) =>
    json(200, await listRunOutputs({ owner: callerIdentity(event), runId: pathParameter(event, 'id'), query: event.queryStringParameters }, d)),
  );

export const handler = createHandler(awsBucketApiDeps);
