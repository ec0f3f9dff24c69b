import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { awsSweepControlDeps } from '../../shared/composition/sweeps';
import type { StopDecision } from '../../shared/domain/early-stopping';
import { logger } from '../../shared/logger';
import type { Artifacts } from '../../shared/ports/artifacts';
import { evaluateSweeps, type SweepControlDeps } from '../../shared/usecases/sweep-control';

/** The `rate(1 minute)` schedule: apply each running sweep's early-stopping rule to its live trials. */
export const createHandler = (deps: () => SweepControlDeps & { artifacts: Pick<Artifacts, 'readMetrics'> }) => {
  let resolved: (SweepControlDeps & { artifacts: Pick<Artifacts, 'readMetrics'> }) | undefined;
  return middy<unknown, { stopped: StopDecision[] }, Error, Context>()
    .use(injectLambdaContext(logger))
    .handler(async () => ({ stopped: await evaluateSweeps((resolved ??= deps())) }));
};

export const handler = createHandler(awsSweepControlDeps);
