import { readFileSync } from 'node:fs';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import * as awaitReplacement from '../../../functions/steps/await-replacement';
import * as checkInstance from '../../../functions/steps/check-instance';
import * as decideRecovery from '../../../functions/steps/decide-recovery';
import * as finalizeArtifacts from '../../../functions/steps/finalize-artifacts';
import * as finishRun from '../../../functions/steps/finish-run';
import * as launchTraining from '../../../functions/steps/launch-training';
import * as prefetchData from '../../../functions/steps/prefetch-data';
import * as provisionInstance from '../../../functions/steps/provision-instance';
import * as releaseResources from '../../../functions/steps/release-resources';
import * as validateRun from '../../../functions/steps/validate-run';
import type { StepDeps } from '../../../shared/usecases/step-deps';
import { stepConfig } from '../../support/aws-clients';

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../fixtures/events/${name}.json`, import.meta.url), 'utf8'));

/** Dependencies that fail the test if a use case is reached: bad input must stop at the parse. */
function unreachable<T extends object>(port: string): T {
  return new Proxy({} as T, {
    get(_target, property) {
      throw new Error(`${port}.${String(property)} was used, but the event should have been rejected first`);
    },
  });
}
const deps: StepDeps = {
  store: unreachable('store'),
  compute: unreachable('compute'),
  artifacts: unreachable('artifacts'),
  clock: () => new Date('2025-01-01T00:00:00Z'),
  config: stepConfig('t'),
};
const context = { functionName: 'test', awsRequestId: 'req-1' } as Context;

type Handler = (event: unknown, context: Context) => Promise<unknown>;

describe('step handlers reject malformed events with errors that name the field', () => {
  it.each<[string, Handler, string, RegExp]>([
    ['validate-run.no-execution-name', validateRun.createHandler(deps), 'Step.InputInvalid', /executionName/],
    ['provision-instance.bad-attempt', provisionInstance.createHandler(deps), 'Step.InputInvalid', /attempt/],
    ['check-instance.bad-checks', checkInstance.createHandler(deps), 'Step.InputInvalid', /checks/],
    ['prefetch-data.unknown-action', prefetchData.createHandler(deps), 'Step.InputInvalid', /action/],
    ['launch-training.no-token', launchTraining.createHandler(deps), 'Step.InputInvalid', /taskToken/],
    // Attempt 1 has no warned attempt before it: nothing can have been launched for it on a warning.
    ['await-replacement.first-attempt', awaitReplacement.createHandler(deps), 'Step.InputInvalid', /attempt/],
    ['finalize-artifacts.bad-run-id', finalizeArtifacts.createHandler(deps), 'Step.InputInvalid', /runId: must be a run id/],
    ['decide-recovery.no-error-name', decideRecovery.createHandler(deps), 'Step.InputInvalid', /error\.Error/],
    ['release-resources.no-execution-name', releaseResources.createHandler(deps), 'Step.InputInvalid', /executionName/],
    ['finish-run.empty-execution-name', finishRun.createHandler(deps), 'Step.InputInvalid', /executionName/],
  ])('%s', async (name, handler, errorName, message) => {
    const failure = handler(fixture(name), context);
    await expect(failure).rejects.toMatchObject({ name: errorName });
    await expect(failure).rejects.toThrow(message);
  });

  it('rejects a bad run spec with Run.Invalid (FAILED_PRECHECKS), naming the field and what to fix', async () => {
    const failure = validateRun.createHandler(deps)(fixture('validate-run.bad-spec'), context);
    await expect(failure).rejects.toMatchObject({ name: 'Run.Invalid' });
    await expect(failure).rejects.toThrow(/name: must be 1-63 letters/);
  });
});

describe('ValidateRun checks secrets against the owner of the run', () => {
  const owner = 'arn:aws:iam::123456789012:role/ml-engineer';
  const withSecrets = (secrets: Record<string, string>) => ({
    executionName: 'r-0123456789abcdef',
    input: {
      runId: 'r-0123456789abcdef',
      owner,
      spec: { name: 'tracked', code: { bundle: 's3://code/b.tar.gz', entrypoint: 'train.py' }, instance: { types: ['g5.xlarge'] }, secrets },
    },
  });

  it('fails Run.Invalid (FAILED_PRECHECKS) for a secret outside the owner path, before anything is stored', async () => {
    const scoped = { ...deps, config: { ...deps.config, secretsPrefix: '/runctl/test/secrets' } };
    const failure = validateRun.createHandler(scoped)(withSecrets({ WANDB_API_KEY: 'ssm:/runctl/test/secrets/someone-else/wandb-key' }), context);
    await expect(failure).rejects.toMatchObject({ name: 'Run.Invalid' });
    await expect(failure).rejects.toThrow(/secrets\.WANDB_API_KEY: must name a parameter under your secrets path: "ssm:\/runctl\/test\/secrets\/[0-9a-f]{32}\/<name>"/);
  });

  it('fails Run.Invalid for any secret when the stack has no secrets prefix', async () => {
    const failure = validateRun.createHandler(deps)(withSecrets({ WANDB_API_KEY: 'ssm:/runctl/test/secrets/x/k' }), context);
    await expect(failure).rejects.toThrow(/secrets\.WANDB_API_KEY: this runctl stack has no secrets prefix/);
  });
});
