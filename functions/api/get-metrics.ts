import { awsBucketApiDeps, type ApiDeps } from '../../shared/composition/api';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import { readRunMetrics, type RunsBucketDeps } from '../../shared/usecases/run-artifacts';

/** GET /runs/{id}/metrics?limit=&nextToken= — the run's metrics lines, oldest first, paginated. */
export const createHandler = (deps: () => ApiDeps & RunsBucketDeps) =>
  apiHandler(deps, async (event, d) =>
    json(
      200,
      await readRunMetrics({ owner: callerIdentity(event), runId: pathParameter(event, 'id'), query: event.queryStringParameters }, d),
    ),
  );

export const handler = createHandler(awsBucketApiDeps);
