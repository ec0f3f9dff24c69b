import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import { RunCancelledError, StatusConflictError } from '../errors';
import { logger } from '../logger';
import { parseStepEvent } from '../usecases/step-event';

export type TaskHandler<R> = middy.MiddyfiedHandler<unknown, R, Error, Context>;

function isBuilder<D>(deps: D | (() => D)): deps is () => D {
  return typeof deps === 'function';
}

/**
 * A non-HTTP Lambda (a state machine task, an EventBridge target): Powertools logger context,
 * the event parsed by `parse` (which throws a named error naming each bad field), then one use
 * case. `deps` is the dependencies or a function that builds them on first use, so importing a
 * handler has no side effect; `mapError` may rename what the use case throws.
 */
export function taskHandler<I, D, R>(
  parse: (event: unknown) => I,
  deps: D | (() => D),
  useCase: (input: I, deps: D) => Promise<R>,
  mapError: (error: unknown) => unknown = (error) => error,
): TaskHandler<R> {
  let resolved: D | undefined = isBuilder(deps) ? undefined : deps;
  return middy<unknown, R, Error, Context>()
    .use(injectLambdaContext(logger))
    .handler(async (event) => {
      const input = parse(event);
      resolved ??= isBuilder(deps) ? deps() : deps;
      try {
        return await useCase(input, resolved);
      } catch (error) {
        throw mapError(error);
      }
    });
}

/**
 * For train-run steps: a cancel that moved the run to CANCELLING under the step ends the attempt
 * the way a cancel ends it (through DecideRecovery and ReleaseResources), not as a controller failure.
 */
export function cancelledDuring(step: string): (error: unknown) => unknown {
  return (error) =>
    error instanceof StatusConflictError && error.actual === 'CANCELLING'
      ? new RunCancelledError(`Run was cancelled during ${step}`, { cause: error })
      : error;
}

/**
 * A Step Functions task handler: the event parsed with `schema` (a malformed event fails with
 * Step.InputInvalid naming each field), then one use case; a cancel under the step is Run.Cancelled.
 */
export function stepHandler<S extends z.ZodType, D, R>(
  step: string,
  schema: S,
  deps: D | (() => D),
  useCase: (event: z.output<S>, deps: D) => Promise<R>,
): TaskHandler<R> {
  return taskHandler((event) => parseStepEvent(step, schema, event), deps, useCase, cancelledDuring(step));
}
