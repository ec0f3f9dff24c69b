import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { apiLogger, type ApiDeps } from '../composition/api';
import { httpErrors } from './error-handler';
import { jsonBody } from './json-body';
import type { ApiEvent, ApiResult } from './responses';

/**
 * Wraps an API route: logger context, JSON body parsing (for routes with a body) and the
 * error mapping. Dependencies are resolved on the first invocation and then reused, so a
 * test or the local server can hand in its own and importing a handler has no side effect.
 */
export function apiHandler<D = ApiDeps>(
  deps: () => D,
  route: (event: ApiEvent, deps: D) => Promise<ApiResult>,
  options: { jsonBody?: boolean } = {},
): middy.MiddyfiedHandler<ApiEvent, ApiResult, Error, Context> {
  let resolved: D | undefined;
  const handler = middy<ApiEvent, ApiResult, Error, Context>().handler(async (event) => route(event, (resolved ??= deps())));
  handler.use(injectLambdaContext(apiLogger));
  if (options.jsonBody === true) handler.use(jsonBody());
  handler.use(httpErrors(apiLogger));
  return handler;
}
