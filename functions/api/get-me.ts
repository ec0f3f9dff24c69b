import { awsWhoAmIDeps } from '../../shared/composition/api';
import { apiHandler } from '../../shared/http/api-handler';
import { callerIdentity, callerPrincipal, json } from '../../shared/http/responses';
import { describeCaller, type WhoAmIDeps } from '../../shared/usecases/whoami';

/** GET /me — the caller's owner, owner key and secrets path (`runctl whoami`); reads nothing but the request. */
export const createHandler = (deps: () => WhoAmIDeps) =>
  apiHandler(deps, async (event, d) => json(200, describeCaller({ principal: callerPrincipal(event), owner: callerIdentity(event) }, d)));

export const handler = createHandler(awsWhoAmIDeps);
