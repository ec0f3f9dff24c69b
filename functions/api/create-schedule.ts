import { awsScheduleApiDeps } from '../../shared/composition/reconcile';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json } from '../../shared/http/responses';
import { createSchedule, type ScheduleApiDeps } from '../../shared/usecases/schedules';

/** POST /schedules `{name, expression, timezone?, spec}` — 201 with the schedule. */
export const createHandler = (deps: () => ScheduleApiDeps) =>
  apiHandler(
    deps,
    async (event, d) => json(201, await createSchedule({ owner: callerIdentity(event), body: event.body }, d)),
    { jsonBody: true },
  );

export const handler = createHandler(() => awsScheduleApiDeps());
