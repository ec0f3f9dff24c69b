import { awsScheduleApiDeps, scheduleRouteHandler } from '../../shared/composition/reconcile';
import { callerIdentity, json } from '../../shared/http/responses';
import { listSchedules, type ScheduleApiDeps } from '../../shared/usecases/schedules';

/** GET /schedules?limit&nextToken — the caller's schedules, newest first. */
export const createHandler = (deps: () => ScheduleApiDeps) =>
  scheduleRouteHandler(deps, async (event, d) =>
    json(200, await listSchedules({ owner: callerIdentity(event), query: event.queryStringParameters }, d)),
  );

export const handler = createHandler(() => awsScheduleApiDeps());
