import { awsBucketApiDeps, type ApiDeps } from '../../shared/composition/api';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import { readRunLogs, type RunsBucketDeps } from '../../shared/usecases/run-artifacts';

/** GET /runs/{id}/logs?attempt=&offset=&length= or ?tail= — a byte range or the tail of an attempt's log. */
export const createHandler = (deps: () => ApiDeps & RunsBucketDeps) =>
  apiHandler(deps, async (event, d) =>
    json(
      200,
      await readRunLogs({ owner: callerIdentity(event), runId: pathParameter(event, 'id'), query: event.queryStringParameters }, d),
    ),
  );

export const handler = createHandler(awsBucketApiDeps);
