import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { awsStartScheduledRunDeps, reconcileLogger } from '../../shared/composition/reconcile';
import {
  startScheduledRun,
  type StartScheduledRunDeps,
  type StartScheduledRunResult,
} from '../../shared/usecases/schedules';

/** EventBridge Scheduler target: `{scheduleId, scheduledTime}` → one run of the stored spec (idempotent per firing). */
export const createHandler = (deps: () => StartScheduledRunDeps) => {
  let resolved: StartScheduledRunDeps | undefined;
  return middy<unknown, StartScheduledRunResult, Error, Context>()
    .use(injectLambdaContext(reconcileLogger))
    .handler(async (event) => {
      const result = await startScheduledRun(event, (resolved ??= deps()));
      if (result.started) reconcileLogger.info('Scheduled run submitted', { ...result });
      else reconcileLogger.warn('Scheduled run not started', { reason: result.reason });
      return result;
    });
};

export const handler = createHandler(awsStartScheduledRunDeps);
