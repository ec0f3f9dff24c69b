import type { Logger } from '@aws-lambda-powertools/logger';
import type { MiddlewareObj } from '@middy/core';
import { ConflictError, ForbiddenError, NotFoundError, RunInvalidError, StatusConflictError } from '../errors';
import { json, type ApiResult } from './responses';

interface HttpLikeError {
  statusCode: number;
  message: string;
}

function isHttpLikeError(error: unknown): error is HttpLikeError {
  return error instanceof Error && 'statusCode' in error && typeof error.statusCode === 'number';
}

/** Maps an error to the response the caller sees; a 5xx never shows internals. */
export function toErrorResponse(error: unknown, requestId: string | undefined): ApiResult & { statusCode: number } {
  if (error instanceof RunInvalidError) return json(400, { message: error.message, issues: error.issues });
  if (error instanceof ForbiddenError) return json(403, { message: error.message });
  if (error instanceof NotFoundError) return json(404, { message: error.message });
  if (error instanceof ConflictError || error instanceof StatusConflictError) return json(409, { message: error.message });
  // middy's body parser: unsupported media type (415) and malformed JSON (422) are the caller's to fix.
  if (isHttpLikeError(error) && error.statusCode < 500) {
    const message =
      error.statusCode === 415
        ? 'Send the body as JSON with the header content-type: application/json'
        : 'The request body is not valid JSON';
    return json(400, { message });
  }
  return json(500, { message: 'Internal error; quote this request id when reporting it', requestId });
}

/** middy middleware: domain errors become 4xx with their message, anything else a bare 500. */
export function httpErrors(logger: Logger): MiddlewareObj<unknown, ApiResult> {
  return {
    onError: async (request) => {
      const response = toErrorResponse(request.error, request.context.awsRequestId);
      if (response.statusCode >= 500) logger.error('Request failed', { error: request.error });
      else logger.info('Request refused', { statusCode: response.statusCode, message: request.error?.message });
      request.response = response;
    },
  };
}
