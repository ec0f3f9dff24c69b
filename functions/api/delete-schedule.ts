import { awsScheduleApiDeps } from '../../shared/composition/reconcile';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, pathParameter } from '../../shared/http/responses';
import { deleteSchedule, type ScheduleApiDeps } from '../../shared/usecases/schedules';

/** DELETE /schedules/{id} — 204; another owner's schedule is a 404. */
export const createHandler = (deps: () => ScheduleApiDeps) =>
  apiHandler(deps, async (event, d) => {
    await deleteSchedule({ owner: callerIdentity(event), scheduleId: pathParameter(event, 'id') }, d);
    return { statusCode: 204 };
  });

export const handler = createHandler(() => awsScheduleApiDeps());
