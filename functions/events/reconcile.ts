import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { awsReconcileDeps, reconcileLogger } from '../../shared/composition/reconcile';
import { reconcile, type ReconcileDeps, type ReconcileReport } from '../../shared/usecases/reconcile';

/** The `rate(5 minutes)` schedule: one reconciler pass. The scheduled event carries nothing it needs. */
export const createHandler = (deps: () => ReconcileDeps) => {
  let resolved: ReconcileDeps | undefined;
  return middy<unknown, ReconcileReport, Error, Context>()
    .use(injectLambdaContext(reconcileLogger))
    .handler(async () => reconcile((resolved ??= deps())));
};

export const handler = createHandler(awsReconcileDeps);
