import { awsScheduleApiDeps } from '../../shared/composition/reconcile';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { listSchedules, type ScheduleApiDeps } from '../../shared/usecases/schedules';

/** GET /schedules?limit&nextToken — the caller's schedules, newest first. */
export const createHandler = (deps: () => ScheduleApiDeps) =>
  apiHandler(deps, async (event, d) =>
    json(200, await listSchedules({ owner: callerIdentity(event), query: event.queryStringParameters }, d)),
  );

export const handler = createHandler(() => awsScheduleApiDeps());
