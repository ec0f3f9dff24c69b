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
 * The caller's IAM identity, which owns what it creates: the route's AWS_IAM authorizer puts
 * the signer's ARN in the request context. An assumed-role session's ARN ends in a session name
 * that whoever calls sts:AssumeRole picks freely, so it names no one: the owner is the role
 * (`arn:aws:sts::<acct>:assumed-role/<role>/<session>` → `arn:aws:iam::<acct>:role/<role>`),
 * and everyone who may assume a role shares its runs. The one exception is a role of IAM Identity
 * Center (`AWSReservedSSO_…`): only the SSO service assumes it, and it names the session after
 * the signed-in user, so each user keeps their own runs. An IAM user is its user ARN.
 */
export function callerIdentity(event: unknown): string {
  return ownerOf(callerPrincipal(event));
}

/** The ARN the request was signed with, as the AWS_IAM authorizer reports it (for an assumed role, with its session name). */
export function callerPrincipal(event: unknown): string {
  const parsed = IamContextSchema.safeParse(event);
  if (!parsed.success) {
    // Only reachable when a route was deployed without IAM authorization: refuse, do not guess.
    throw new Error('Request carries no IAM identity; every route must use the AWS_IAM authorizer');
  }
  return parsed.data.requestContext.authorizer.iam.userArn;
}

/** The owner an IAM principal ARN stands for: an assumed-role session is its role, without the session name. */
export function ownerOf(principalArn: string): string {
  const session = /^arn:(aws[\w-]*):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/.exec(principalArn);
  if (session === null || session[3]?.startsWith('AWSReservedSSO_') === true) return principalArn;
  const [, partition, account, role] = session;
  return `arn:${partition}:iam::${account}:role/${role}`;
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
