import { z } from 'zod';
import { awsAgentControlDeps } from '../../shared/composition/agent-control';
import { ForbiddenError, NotFoundError } from '../../shared/errors';
import { apiHandler } from '../../shared/http/api-handler';
import { json, optionalJsonBody, pathParameter } from '../../shared/http/responses';
import {
  AGENT_ACTIONS,
  callingInstance,
  parseAgentRequest,
  relayCallback,
  vendRunCredentials,
  type AgentControlDeps,
} from '../../shared/usecases/agent-control';

const CallerSchema = z.object({
  requestContext: z.object({ authorizer: z.object({ iam: z.object({ userId: z.string().min(1) }) }) }),
});

/**
 * POST /agent/{action} — the training instance's only way to the control plane: `credentials`
 * (the run's own, short-lived), `heartbeat`, `success`, `failure` (relayed to the waiting task).
 */
export const createHandler = (deps: () => AgentControlDeps) =>
  apiHandler(deps, async (event, d) => {
    const action = AGENT_ACTIONS.find((a) => a === pathParameter(event, 'action'));
    if (action === undefined) throw new NotFoundError(`No agent action ${pathParameter(event, 'action')}`);
    const caller = CallerSchema.safeParse(event);
    if (!caller.success) throw new ForbiddenError('The agent routes need an IAM-signed request');
    const instanceId = callingInstance(caller.data.requestContext.authorizer.iam.userId, d.config.instanceRoleId);
    const request = parseAgentRequest(optionalJsonBody(event) ?? {});
    if (action === 'credentials') return json(200, await vendRunCredentials(request, instanceId, d));
    await relayCallback(action, request, instanceId, d);
    return json(200, {});
  });

export const handler = createHandler(awsAgentControlDeps);
