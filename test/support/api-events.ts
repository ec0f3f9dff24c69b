import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2WithIAMAuthorizer, Context } from 'aws-lambda';

const template: APIGatewayProxyEventV2WithIAMAuthorizer = JSON.parse(
  readFileSync(new URL('../fixtures/api/post-runs.json', import.meta.url), 'utf8'),
);

export const ALICE = 'arn:aws:sts::123456789012:assumed-role/ml-engineer/alice';
export const BOB = 'arn:aws:sts::123456789012:assumed-role/data-scientist/bob';
/** Another session of ALICE's role: the same owner, whatever session name it picked. */
export const ALICE_OTHER_SESSION = 'arn:aws:sts::123456789012:assumed-role/ml-engineer/not-alice';
/** The owners the API records for them: their roles (docs/api.md, "Who owns a run"). */
export const ALICE_OWNER = 'arn:aws:iam::123456789012:role/ml-engineer';
export const BOB_OWNER = 'arn:aws:iam::123456789012:role/data-scientist';

/** An API Gateway v2 (HTTP API, IAM authorizer) event for a route, built from the recorded fixture. */
export function apiEvent(options: {
  method: string;
  path: string;
  routeKey: string;
  caller?: string;
  body?: unknown;
  rawBody?: string;
  contentType?: string | null;
  pathParameters?: Record<string, string>;
  query?: Record<string, string>;
}): APIGatewayProxyEventV2WithIAMAuthorizer {
  const event = structuredClone(template);
  event.routeKey = options.routeKey;
  event.rawPath = options.path;
  event.requestContext.routeKey = options.routeKey;
  event.requestContext.http.method = options.method;
  event.requestContext.http.path = options.path;
  event.requestContext.authorizer.iam.userArn = options.caller ?? ALICE;
  event.body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (options.contentType === null) delete event.headers['content-type'];
  else if (options.contentType !== undefined) event.headers['content-type'] = options.contentType;
  event.pathParameters = options.pathParameters;
  event.queryStringParameters = options.query;
  event.rawQueryString = new URLSearchParams(options.query ?? {}).toString();
  return event;
}

/** A Lambda context good enough for middy and the Powertools logger. */
export function lambdaContext(): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'runctl-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:runctl-test',
    memoryLimitInMB: '1024',
    awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
    logGroupName: '/aws/lambda/runctl-test',
    logStreamName: '2026/11/25/[$LATEST]abcdef',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
