import type { APIGatewayProxyEventV2WithIAMAuthorizer, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { z } from 'zod';
import { RunInvalidError } from '../errors';

export type ApiEvent = APIGatewayProxyEventV2WithIAMAuthorizer;
export type ApiResult = APIGatewayProxyStructuredResultV2;

/** A JSON response. */
export function json(statusCode: number, body: unknown): ApiResult & { statusCode: number } {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

const IamContextSchema = z.object({
  requestContext: z.object({
    authorizer: z.object({
      iam: z.object({ userArn: z.string().min(1) }),
    }),
  }),
});

/**
 * The caller's IAM identity: the route's AWS_IAM authorizer puts the signer's ARN in the
 * request context, and every run belongs to the identity that submitted it.
 */
export function callerIdentity(event: unknown): string {
  const parsed = IamContextSchema.safeParse(event);
  if (!parsed.success) {
    // Only reachable when a route was deployed without IAM authorization: refuse, do not guess.
    throw new Error('Request carries no IAM identity; every route must use the AWS_IAM authorizer');
  }
  return parsed.data.requestContext.authorizer.iam.userArn;
}

/** A required path parameter. */
export function pathParameter(event: ApiEvent, name: string): string {
  const value = event.pathParameters?.[name];
  if (value === undefined || value === '') {
    throw new RunInvalidError(`Path parameter ${name} is required`, [{ path: name, message: 'is required' }]);
  }
  return value;
}

/** The JSON body of a route whose body may be omitted; malformed JSON is a 400. */
export function optionalJsonBody(event: ApiEvent): unknown {
  if (event.body === undefined || event.body.trim() === '') return undefined;
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RunInvalidError('The request body is not valid JSON', [{ path: '(body)', message: 'is not valid JSON' }], { cause: error });
  }
}
