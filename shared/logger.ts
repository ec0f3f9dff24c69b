import { Logger } from '@aws-lambda-powertools/logger';

/** The one Powertools logger of the step handlers; `injectLambdaContext` adds the request context. */
export const logger = new Logger({ serviceName: 'runctl' });
