import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { Context } from 'aws-lambda';
import type { ApiDeps } from '../composition/api';
import { httpErrors } from './error-handler';
import type { ApiEvent, ApiResult } from './responses';

/**
 * Wraps an API route: logger context, JSON body parsing (for routes with a body) and the
 * error mapping. Dependencies come first so tests and the local server can inject their own.
 */
export function apiHandler(
  deps: () => ApiDeps,
  route: (event: ApiEvent, deps: ApiDeps) => Promise<ApiResult>,
  options: { jsonBody?: boolean } = {},
): middy.MiddyfiedHandler<ApiEvent, ApiResult, Error, Context> {
  const resolved = { current: undefined as ApiDeps | undefined };
  const get = (): ApiDeps => (resolved.current ??= deps());
  const handler = middy<ApiEvent, ApiResult, Error, Context>().handler(async (event) => route(event, get()));
  handler.use(injectLambdaContext(get().logger));
  if (options.jsonBody === true) handler.use(httpJsonBodyParser({ disableContentTypeError: false }));
  handler.use(httpErrors(get().logger));
  return handler;
}
