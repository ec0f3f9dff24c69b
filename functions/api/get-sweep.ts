import { awsSweepStepDeps } from '../../shared/composition/sweeps';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, json, pathParameter } from '../../shared/http/responses';
import type { Sweeps } from '../../shared/ports/sweeps';
import { describeSweep } from '../../shared/usecases/sweep-control';

/** GET /sweeps/{id}?limit=&nextToken= — the sweep and a page of its trials. */
export const createHandler = (deps: () => { sweeps: Sweeps }) =>
  apiHandler(deps, async (event, d) =>
    json(200, await describeSweep({ owner: callerIdentity(event), sweepId: pathParameter(event, 'id'), query: event.queryStringParameters }, d)),
  );

export const handler = createHandler(awsSweepStepDeps);
