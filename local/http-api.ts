/**
 * The HTTP API on the loopback interface: each request becomes the API Gateway v2 event that
 * the deployed HTTP API (payload 2.0, AWS_IAM authorizer) would deliver, and goes to the real
 * handler of its route. Only the authorizer differs: every request is signed in as the one
 * configured identity, as if its SigV4 signature had been checked.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { createHandler as cancelRun } from '../functions/api/cancel-run';
import { createHandler as createImage } from '../functions/api/create-image';
import { createHandler as createRun } from '../functions/api/create-run';
import { createHandler as createSweep } from '../functions/api/create-sweep';
import { createHandler as createUpload } from '../functions/api/create-upload';
import { createHandler as createVolume } from '../functions/api/create-volume';
import { createHandler as downloadModel } from '../functions/api/download-model';
import { createHandler as getLogs } from '../functions/api/get-logs';
import { createHandler as getMe } from '../functions/api/get-me';
import { createHandler as getMetrics } from '../functions/api/get-metrics';
import { createHandler as getModel } from '../functions/api/get-model';
import { createHandler as getRun } from '../functions/api/get-run';
import { createHandler as getSweep } from '../functions/api/get-sweep';
import { createHandler as listCheckpoints } from '../functions/api/list-checkpoints';
import { createHandler as listExperimentRuns } from '../functions/api/list-experiment-runs';
import { createHandler as listExperiments } from '../functions/api/list-experiments';
import { createHandler as listModels } from '../functions/api/list-models';
import { createHandler as listOutputs } from '../functions/api/list-outputs';
import { createHandler as listRuns } from '../functions/api/list-runs';
import { createHandler as listImages } from '../functions/api/list-images';
import { createHandler as listVolumes } from '../functions/api/list-volumes';
import { createHandler as promoteModel } from '../functions/api/promote-model';
import { createHandler as registerModel } from '../functions/api/register-model';
import { createHandler as stopSweep } from '../functions/api/stop-sweep';
import type { ApiDeps } from '../shared/composition/api';
import type { VolumeApiDeps } from '../shared/composition/volumes';
import type { Compute } from '../shared/ports/compute';
import type { ApiEvent } from '../shared/http/responses';
import type { ExperimentDeps } from '../shared/usecases/experiments';
import type { ModelDeps } from '../shared/usecases/models';
import type { Sweeps } from '../shared/ports/sweeps';
import type { SweepControlDeps } from '../shared/usecases/sweep-control';
import type { SubmitSweepDeps } from '../shared/usecases/sweeps';
import type { RunsBucketDeps } from '../shared/usecases/run-artifacts';
import { listenLoopback } from './loopback';

/** A Lambda handler of an HTTP API route, as `createHandler(deps)` returns it. */
export type RouteHandler = (event: ApiEvent, context: Context) => Promise<APIGatewayProxyResultV2>;

export type LocalApiDeps = ApiDeps & RunsBucketDeps & { compute: Compute; secretsPrefix?: string };

/** Every route of the API (serverless.yml `httpApi` events), bound to the given dependencies. */
export function apiRoutes(deps: LocalApiDeps): Record<string, RouteHandler> {
  const get = () => deps;
  return {
    'POST /runs': createRun(get),
    'GET /runs': listRuns(get),
    'GET /runs/{id}': getRun(get),
    'POST /runs/{id}/cancel': cancelRun(get),
    'GET /runs/{id}/logs': getLogs(get),
    'GET /runs/{id}/metrics': getMetrics(get),
    'GET /runs/{id}/checkpoints': listCheckpoints(get),
    'GET /runs/{id}/outputs': listOutputs(get),
    'POST /uploads': createUpload(get),
    'GET /me': getMe(get),
  };
}

/** The volume and image routes, served when their dependencies (catalog, prewarm and build executions) are given. */
export function volumeRoutes(deps: VolumeApiDeps): Record<string, RouteHandler> {
  const get = () => deps;
  return {
    'POST /volumes': createVolume(get),
    'GET /volumes': listVolumes(get),
    'POST /images': createImage(get),
    'GET /images': listImages(get),
  };
}

/** The experiment routes (`runctl experiments ls`, `runctl compare`). */
export function experimentRoutes(deps: ExperimentDeps): Record<string, RouteHandler> {
  const get = () => deps;
  return {
    'GET /experiments': listExperiments(get),
    'GET /experiments/{name}/runs': listExperimentRuns(get),
  };
}

/** The model registry routes (`runctl models …`). */
export function modelRoutes(deps: ModelDeps): Record<string, RouteHandler> {
  const get = () => deps;
  return {
    'POST /models/{name}/versions': registerModel(get),
    'GET /models': listModels(get),
    'GET /models/{name}': getModel(get),
    'POST /models/{name}/promote': promoteModel(get),
    'GET /models/{name}/versions/{version}/download': downloadModel(get),
  };
}

/** What the sweep routes need: POST /sweeps starts the sweep machine; stop reaches the trials' runs. */
export interface SweepApiDeps {
  submit: SubmitSweepDeps;
  control: SweepControlDeps;
  sweeps: Sweeps;
}

/** The sweep routes (`runctl sweep`, `runctl sweeps status|stop`). */
export function sweepRoutes(deps: SweepApiDeps): Record<string, RouteHandler> {
  return {
    'POST /sweeps': createSweep(() => deps.submit),
    'GET /sweeps/{id}': getSweep(() => deps),
    'POST /sweeps/{id}/stop': stopSweep(() => deps.control),
  };
}

/** The signed-in caller, as the IAM authorizer would describe it. */
export interface LocalIdentity {
  userArn: string;
  accessKey?: string;
  /** `<principal id>:<session>` for a role session; default: derived from userArn. */
  userId?: string;
}

/** Checks a request's signature and names its signer; undefined refuses it (403), as API Gateway does. */
export type LocalAuthenticator = (request: IncomingMessage, url: URL, body: Buffer) => Promise<LocalIdentity | undefined>;

export interface HttpApiOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Dependencies of the runs routes; without them only `extraRoutes` are served. */
  deps?: LocalApiDeps;
  /** Dependencies of POST/GET /volumes and POST /images; without them those routes answer 404. */
  volumes?: VolumeApiDeps;
  /** Dependencies of the experiment routes; without them those routes answer 404. */
  experiments?: ExperimentDeps;
  /** Dependencies of the model registry routes; without them those routes answer 404. */
  models?: ModelDeps;
  /** Dependencies of the sweep routes; without them those routes answer 404. */
  sweeps?: SweepApiDeps;
  /** Whose runs these are: an IAM ARN, e.g. `arn:aws:iam::000000000000:user/local`; or a signature check per request. */
  identity: string | LocalIdentity | LocalAuthenticator;
  /** More routes (`"POST /schedules"` → handler) beside the built-in ones. */
  extraRoutes?: Record<string, RouteHandler>;
}

export interface RunningHttpApi {
  /** `http://127.0.0.1:<port>`, to pass as `--endpoint`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** API Gateway refuses bodies over 10 MB; so does this server. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** Starts the API on 127.0.0.1. */
export async function startHttpApi(options: HttpApiOptions): Promise<RunningHttpApi> {
  const routes = compileRoutes({
    ...(options.deps === undefined ? {} : apiRoutes(options.deps)),
    ...(options.volumes === undefined ? {} : volumeRoutes(options.volumes)),
    ...(options.experiments === undefined ? {} : experimentRoutes(options.experiments)),
    ...(options.models === undefined ? {} : modelRoutes(options.models)),
    ...(options.sweeps === undefined ? {} : sweepRoutes(options.sweeps)),
    ...options.extraRoutes,
  });
  const given = options.identity;
  const identity: LocalAuthenticator =
    typeof given === 'function' ? given : async () => (typeof given === 'string' ? { userArn: given } : given);
  const server = createServer((request, response) => {
    serve(request, response, routes, identity).catch((error: unknown) => {
      // Only reachable when writing the response itself failed; the handlers map their own errors.
      if (!response.headersSent) writeJson(response, 500, { message: 'Internal error in the local API server' });
      else response.destroy(error instanceof Error ? error : undefined);
    });
  });
  return listenLoopback(server, options.port ?? 0);
}

interface CompiledRoute {
  routeKey: string;
  method: string;
  pattern: RegExp;
  names: string[];
  handler: RouteHandler;
}

function compileRoutes(routes: Record<string, RouteHandler>): CompiledRoute[] {
  return Object.entries(routes).map(([routeKey, handler]) => {
    const [method = '', path = ''] = routeKey.split(' ');
    const names: string[] = [];
    const source = path
      .split('/')
      .map((segment) => {
        const parameter = /^\{(\w+)\}$/.exec(segment);
        if (parameter?.[1] === undefined) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(parameter[1]);
        return '([^/]+)';
      })
      .join('/');
    return { routeKey, method, pattern: new RegExp(`^${source}$`), names, handler };
  });
}

/** Stands for a path segment that is not valid percent-encoding. */
const MALFORMED = '\0malformed';

/** `decodeURIComponent`, answering MALFORMED instead of throwing a URIError (which would be a 500). */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return MALFORMED;
  }
}

async function serve(request: IncomingMessage, response: ServerResponse, routes: CompiledRoute[], authenticate: LocalAuthenticator): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://127.0.0.1');
  const method = request.method ?? 'GET';
  let pathParameters: Record<string, string> | undefined;
  const route = routes.find((candidate) => {
    if (candidate.method !== method) return false;
    const match = candidate.pattern.exec(url.pathname);
    if (match === null) return false;
    pathParameters = Object.fromEntries(candidate.names.map((name, i) => [name, decodePathSegment(match[i + 1] ?? '')]));
    return true;
  });
  if (pathParameters !== undefined && Object.values(pathParameters).includes(MALFORMED)) {
    // API Gateway answers a malformed percent-escape with a 400 too; it is the caller's to fix.
    writeJson(response, 400, { message: 'The request path holds a malformed percent-escape (like %E0%A4%A); encode it with encodeURIComponent' });
    return;
  }
  if (route === undefined) {
    writeJson(response, 404, { message: 'Not Found' });
    return;
  }
  const body = await readBody(request);
  if (body === undefined) {
    writeJson(response, 413, { message: 'Request Entity Too Large' });
    return;
  }
  const identity = await authenticate(request, url, body);
  if (identity === undefined) {
    writeJson(response, 403, { message: 'Forbidden' });
    return;
  }
  const event = toApiEvent({ request, url, route, pathParameters, body, identity });
  const result = await route.handler(event, lambdaContext(route.routeKey, event.requestContext.requestId));
  writeResult(response, result);
}

/** The API Gateway v2 event for one request, shaped like a recorded IAM-authorized one. */
function toApiEvent(input: {
  request: IncomingMessage;
  url: URL;
  route: CompiledRoute;
  pathParameters: Record<string, string> | undefined;
  body: Buffer;
  identity: LocalIdentity;
}): ApiEvent {
  const { request, url, route, body, identity } = input;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = name in query ? `${query[name]},${value}` : value;
  const accountId = /^arn:aws[\w-]*:(?:iam|sts)::(\d{12}):/.exec(identity.userArn)?.[1] ?? '000000000000';
  const callerId = identity.userArn.split('/').slice(1).join(':') || identity.userArn;
  const now = new Date();
  const textual = body.length === 0 || isTextual(headers['content-type']);
  const host = headers.host ?? '127.0.0.1';
  return {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    headers,
    queryStringParameters: Object.keys(query).length > 0 ? query : undefined,
    pathParameters: input.pathParameters !== undefined && Object.keys(input.pathParameters).length > 0 ? input.pathParameters : undefined,
    requestContext: {
      accountId,
      apiId: 'local',
      authorizer: {
        iam: {
          accessKey: identity.accessKey ?? 'LOCALACCESSKEY',
          accountId,
          callerId,
          cognitoIdentity: null,
          principalOrgId: '',
          userArn: identity.userArn,
          userId: identity.userId ?? callerId,
        },
      },
      domainName: host,
      domainPrefix: host.split('.')[0] ?? host,
      http: {
        method: route.method,
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: route.routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: body.length === 0 ? undefined : textual ? body.toString('utf8') : body.toString('base64'),
    isBase64Encoded: !textual,
  };
}

/** API Gateway passes JSON and text bodies as strings, anything else base64-encoded. */
function isTextual(contentType: string | undefined): boolean {
  return contentType === undefined || /^(text\/|application\/(json|[\w.+-]*\+json|x-www-form-urlencoded|xml))/i.test(contentType);
}

function lambdaContext(routeKey: string, requestId: string): Context {
  const functionName = `runctl-local-${routeKey.replace(/[^A-Za-z0-9]+/g, '-').replace(/-$/, '')}`;
  const deadline = Date.now() + 30_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** Writes a handler's result the way API Gateway does, including its string shorthand. */
function writeResult(response: ServerResponse, result: APIGatewayProxyResultV2): void {
  if (typeof result === 'string') {
    response.writeHead(200, { 'content-type': 'application/json' }).end(result);
    return;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
  if (result.cookies !== undefined && result.cookies.length > 0) headers['set-cookie'] = result.cookies;
  const body = result.body === undefined ? '' : result.isBase64Encoded === true ? Buffer.from(result.body, 'base64') : result.body;
  response.writeHead(result.statusCode ?? 200, headers).end(body);
}

function writeJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
