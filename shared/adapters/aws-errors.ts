/**
 * Reading and translating AWS SDK errors, shared by every adapter.
 *
 * The SDK throws a `ServiceException` whose `name` is the AWS error code (EC2 also copies it to
 * `Code`) and whose `$metadata.httpStatusCode` is the HTTP status. Adapters classify it here and
 * translate it into a named error (shared/errors.ts) that keeps the original as `cause`, so the
 * state machines match on stable names and a log still shows what AWS said.
 */
import { isTransientError as isSdkTransientError } from '@smithy/core/retry';
import { AwsCallFailedError, RunctlError, ThrottledError } from '../errors';

/**
 * Client settings the composition roots should pass to every SDK client: the SDK itself then
 * retries throttling and 5xx with its adaptive rate limiter before an adapter ever sees them.
 * `new EC2Client({ ...AWS_CLIENT_RETRY_CONFIG })`.
 */
export const AWS_CLIENT_RETRY_CONFIG = { maxAttempts: 5, retryMode: 'adaptive' } as const;

/** Codes AWS uses to say "slow down" (EC2 query API, most JSON APIs, newer services). */
const THROTTLING_CODES = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ProvisionedThroughputExceededException',
]);

/** Server-side codes that a later call may not meet again. */
const TRANSIENT_CODES = new Set(['InternalError', 'InternalFailure', 'ServiceUnavailable', 'Unavailable', 'RequestTimeout']);

/** The AWS error code of an SDK error (`name`, or EC2's `Code`), or undefined for anything else. */
export function awsErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = 'Code' in error ? error.Code : undefined;
  if (typeof code === 'string' && code !== '') return code;
  const name = 'name' in error ? error.name : undefined;
  return typeof name === 'string' && name !== '' && name !== 'Error' ? name : undefined;
}

/** The HTTP status AWS answered with, when the error carries one. */
export function awsHttpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return undefined;
  const metadata = error.$metadata;
  if (typeof metadata !== 'object' || metadata === null || !('httpStatusCode' in metadata)) return undefined;
  return typeof metadata.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined;
}

/** True when AWS asked the caller to slow down (an already translated Aws.Throttled included). */
export function isThrottlingError(error: unknown): boolean {
  if (error instanceof ThrottledError) return true;
  const code = awsErrorCode(error);
  return (code !== undefined && THROTTLING_CODES.has(code)) || awsHttpStatus(error) === 429;
}

/**
 * True for throttling, for server-side failures that a later call may not meet, and for the
 * network failures the SDK itself retries (ECONNRESET / "socket hang up", EPIPE, ETIMEDOUT,
 * TimeoutError, unreachable hosts: the SDK's own classifier decides). A connection that broke
 * on every one of the SDK's tries is as transient as a 503 on every try: the call may have
 * been carried out, its answer lost, and a later call (with the callers' idempotency) is right.
 */
export function isTransientError(error: unknown): boolean {
  if (isThrottlingError(error)) return true;
  const code = awsErrorCode(error);
  if (code !== undefined && TRANSIENT_CODES.has(code)) return true;
  const status = awsHttpStatus(error);
  if (status !== undefined && status >= 500) return true;
  return isSdkErrorShaped(error) && isSdkTransientError(error);
}

type SdkErrorShape = Parameters<typeof isSdkTransientError>[0];

/** What the SDK's classifier reads: an Error whose cause, if any, is an Error too. */
function isSdkErrorShaped(error: unknown): error is SdkErrorShape {
  return error instanceof Error && (error.cause === undefined || error.cause instanceof Error);
}

function errorMessage(error: unknown): string {
  return error instanceof Error && error.message !== '' ? error.message : String(error);
}

/**
 * Translates an SDK error raised by `operation` into a named error with the original as `cause`.
 * Transient errors (throttling, 5xx, broken connections) become `Aws.Throttled`, the name the state machines retry
 * with backoff; everything else becomes `Aws.CallFailed`. Named errors pass through unchanged.
 */
export function translateAwsError(error: unknown, operation: string): RunctlError {
  if (error instanceof RunctlError) return error;
  const code = awsErrorCode(error) ?? 'UnknownError';
  const message = `${operation} failed: ${code}: ${errorMessage(error)}`;
  return isTransientError(error)
    ? new ThrottledError(message, { cause: error })
    : new AwsCallFailedError(message, { cause: error });
}

export interface ThrottleRetryOptions {
  /** Total tries, the first included. */
  attempts: number;
  /** Cap of the first backoff; doubles on each retry. */
  baseMs: number;
  /** Upper bound of any single backoff. */
  maxMs?: number;
  /** Injected in tests; defaults to setTimeout and Math.random. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `fn`, retrying while AWS throttles it, with "full jitter" backoff
 * (sleep = random(0, min(maxMs, baseMs * 2^retry))): callers that were throttled together spread
 * out instead of retrying in lockstep. Only for calls that are safe to repeat (reads, or writes
 * with a client token). Any other error, or the last throttling error, is rethrown as is.
 */
export async function withThrottleRetry<T>(fn: () => Promise<T>, options: ThrottleRetryOptions): Promise<T> {
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const maxMs = options.maxMs ?? 20_000;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= options.attempts || !isThrottlingError(error)) throw error;
      const cap = Math.min(maxMs, options.baseMs * 2 ** (attempt - 1));
      await sleep(Math.floor(random() * cap));
    }
  }
}
