import { createServer, type IncomingMessage, type Server } from 'node:http';
import { z } from 'zod';
import { listenLoopback } from './loopback';

/**
 * A loopback HTTP server that speaks the Step Functions JSON 1.0 protocol for the three
 * task-token callbacks, so the real agent (the AWS CLI with AWS_ENDPOINT_URL_SFN) can call
 * back on the local backend and in tests. Everything else gets an UnknownOperationException.
 */

/** Thrown by a handler when the task is no longer waited for; returned as AWS's `TaskTimedOut`. */
export class TaskTimedOutError extends Error {
  override name = 'TaskTimedOut';
}

/** Thrown by a handler for a token it does not know; returned as AWS's `InvalidToken`. */
export class InvalidTokenError extends Error {
  override name = 'InvalidToken';
}

export interface TaskCallbackHandler {
  success(token: string, output: string): Promise<void> | void;
  failure(token: string, error: string | undefined, cause: string | undefined): Promise<void> | void;
  heartbeat(token: string): Promise<void> | void;
}

export interface TaskCallbackServer {
  /** `http://127.0.0.1:<port>`, for AWS_ENDPOINT_URL_SFN. */
  endpoint: string;
  close(): Promise<void>;
}

const SuccessSchema = z.object({ taskToken: z.string().min(1), output: z.string() });
const FailureSchema = z.object({
  taskToken: z.string().min(1),
  error: z.string().optional(),
  cause: z.string().optional(),
});
const HeartbeatSchema = z.object({ taskToken: z.string().min(1) });

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

async function dispatch(target: string, body: unknown, handler: TaskCallbackHandler): Promise<void> {
  switch (target) {
    case 'AWSStepFunctions.SendTaskSuccess': {
      const input = SuccessSchema.parse(body);
      return handler.success(input.taskToken, input.output);
    }
    case 'AWSStepFunctions.SendTaskFailure': {
      const input = FailureSchema.parse(body);
      return handler.failure(input.taskToken, input.error, input.cause);
    }
    case 'AWSStepFunctions.SendTaskHeartbeat': {
      const input = HeartbeatSchema.parse(body);
      return handler.heartbeat(input.taskToken);
    }
    default:
      throw Object.assign(new Error(`operation ${target} is not served here`), { name: 'UnknownOperationException' });
  }
}

function errorBody(error: unknown): { status: number; body: { __type: string; message: string } } {
  if (error instanceof TaskTimedOutError || error instanceof InvalidTokenError) {
    return { status: 400, body: { __type: error.name, message: error.message } };
  }
  if (error instanceof z.ZodError) {
    return { status: 400, body: { __type: 'ValidationException', message: error.message } };
  }
  if (error instanceof SyntaxError) {
    return { status: 400, body: { __type: 'SerializationException', message: error.message } };
  }
  if (error instanceof Error && error.name === 'UnknownOperationException') {
    return { status: 400, body: { __type: error.name, message: error.message } };
  }
  return { status: 500, body: { __type: 'InternalFailure', message: 'internal error' } };
}

/** Starts the server on a free loopback port. */
export async function startTaskCallbackServer(handler: TaskCallbackHandler): Promise<TaskCallbackServer> {
  const server: Server = createServer((request, response) => {
    void (async () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      let status = 200;
      let payload: unknown = {};
      try {
        const text = await readBody(request);
        await dispatch(target, text === '' ? {} : JSON.parse(text), handler);
      } catch (error) {
        const mapped = errorBody(error);
        status = mapped.status;
        payload = mapped.body;
      }
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(JSON.stringify(payload));
    })();
  });
  const { url, close } = await listenLoopback(server);
  return { endpoint: url, close };
}
