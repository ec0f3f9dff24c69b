import { EC2ServiceException } from '@aws-sdk/client-ec2';
import { ParameterNotFound } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import {
  awsErrorCode,
  awsHttpStatus,
  isThrottlingError,
  isTransientError,
  translateAwsError,
  withThrottleRetry,
} from '../../shared/adapters/aws-errors';
import { AwsCallFailedError, NotFoundError, ThrottledError } from '../../shared/errors';

function ec2Error(code: string, status: number, fault: 'client' | 'server' = 'client'): EC2ServiceException {
  const error = new EC2ServiceException({
    name: code,
    $fault: fault,
    $metadata: { httpStatusCode: status, requestId: 'req-1', attempts: 3 },
    message: `${code} message`,
  });
  return Object.assign(error, { Code: code });
}

describe('awsErrorCode / awsHttpStatus', () => {
  it('reads the code and status of an SDK service exception', () => {
    const error = ec2Error('InvalidInstanceID.NotFound', 400);
    expect(awsErrorCode(error)).toBe('InvalidInstanceID.NotFound');
    expect(awsHttpStatus(error)).toBe(400);
  });

  it('reads a modeled exception by its name', () => {
    const error = new ParameterNotFound({ $metadata: { httpStatusCode: 400 }, message: 'nope' });
    expect(awsErrorCode(error)).toBe('ParameterNotFound');
  });

  it('gives nothing for a plain Error or a non-object', () => {
    expect(awsErrorCode(new Error('boom'))).toBeUndefined();
    expect(awsErrorCode('boom')).toBeUndefined();
    expect(awsHttpStatus(new Error('boom'))).toBeUndefined();
  });
});

describe('classification', () => {
  it.each([
    ['RequestLimitExceeded', 503, true],
    ['Throttling', 400, true],
    ['ThrottlingException', 400, true],
    ['InsufficientInstanceCapacity', 500, false],
    ['UnauthorizedOperation', 403, false],
  ])('%s (%i) is throttling: %s', (code, status, expected) => {
    expect(isThrottlingError(ec2Error(code, status))).toBe(expected);
  });

  it.each([
    ['a reset connection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['a hung-up socket', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
    ['a broken pipe', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })],
    ['a timeout', Object.assign(new Error('Connection timed out after 1000 ms'), { name: 'TimeoutError' })],
  ])('treats %s after the SDK\'s retries as transient: Aws.Throttled', (_label, error) => {
    expect(isTransientError(error)).toBe(true);
    expect(translateAwsError(error, 'DynamoDB: read run r-1')).toBeInstanceOf(ThrottledError);
  });

  it('keeps a plain programming error fatal', () => {
    expect(translateAwsError(new TypeError('x is undefined'), 'DynamoDB: read run r-1')).toBeInstanceOf(AwsCallFailedError);
  });

  it('treats any 429 as throttling and any 5xx as transient', () => {
    expect(isThrottlingError(ec2Error('Whatever', 429))).toBe(true);
    expect(isTransientError(ec2Error('InternalError', 500, 'server'))).toBe(true);
    expect(isTransientError(ec2Error('UnauthorizedOperation', 403))).toBe(false);
  });
});

describe('translateAwsError', () => {
  it('turns throttling into Aws.Throttled and keeps the SDK error as cause', () => {
    const original = ec2Error('RequestLimitExceeded', 503, 'server');
    const translated = translateAwsError(original, 'RunInstances');
    expect(translated).toBeInstanceOf(ThrottledError);
    expect(translated.name).toBe('Aws.Throttled');
    expect(translated.cause).toBe(original);
    expect(translated.message).toContain('RunInstances failed: RequestLimitExceeded');
  });

  it('turns a permission error into Aws.CallFailed with the code in the message', () => {
    const original = ec2Error('UnauthorizedOperation', 403);
    const translated = translateAwsError(original, 'TerminateInstances i-1');
    expect(translated).toBeInstanceOf(AwsCallFailedError);
    expect(translated.message).toBe('TerminateInstances i-1 failed: UnauthorizedOperation: UnauthorizedOperation message');
    expect(translated.cause).toBe(original);
  });

  it('lets an already named error through unchanged', () => {
    const named = new NotFoundError('no run');
    expect(translateAwsError(named, 'x')).toBe(named);
  });
});

describe('withThrottleRetry', () => {
  it('retries throttling with full-jitter backoff, then returns the result', async () => {
    const sleeps: number[] = [];
    let calls = 0;
    const result = await withThrottleRetry(
      async () => {
        calls += 1;
        if (calls < 3) throw ec2Error('RequestLimitExceeded', 503, 'server');
        return 'ok';
      },
      { attempts: 5, baseMs: 100, random: () => 0.5, sleep: async (ms) => void sleeps.push(ms) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    // random 0.5 of the caps 100 and 200
    expect(sleeps).toEqual([50, 100]);
  });

  it('caps each backoff at maxMs', async () => {
    const sleeps: number[] = [];
    await expect(
      withThrottleRetry(
        async () => {
          throw ec2Error('Throttling', 400);
        },
        { attempts: 4, baseMs: 1000, maxMs: 1500, random: () => 0.999, sleep: async (ms) => void sleeps.push(ms) },
      ),
    ).rejects.toMatchObject({ name: 'Throttling' });
    expect(sleeps).toEqual([999, 1498, 1498]);
  });

  it('rethrows a non-throttling error at once', async () => {
    let calls = 0;
    const denied = ec2Error('UnauthorizedOperation', 403);
    await expect(
      withThrottleRetry(
        async () => {
          calls += 1;
          throw denied;
        },
        { attempts: 5, baseMs: 1, sleep: async () => undefined },
      ),
    ).rejects.toBe(denied);
    expect(calls).toBe(1);
  });
});
