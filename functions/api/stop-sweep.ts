import { awsSweepControlDeps } from '../../shared/composition/sweeps';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import { stopSweep, type SweepControlDeps } from '../../shared/usecases/sweep-control';

/** POST /sweeps/{id}/stop — 202: no more trials; the running ones checkpoint and stop. */
export const createHandler = (deps: () => SweepControlDeps) =>
  apiHandler(deps, async (event, d) => json(202, await stopSweep({ owner: callerIdentity(event), sweepId: pathParameter(event, 'id') }, d)));

export const handler = createHandler(awsSweepControlDeps);
