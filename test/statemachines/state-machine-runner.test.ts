import { describe, expect, it } from 'vitest';
import { localLambdaArn } from '../../local/asl';
import { LocalStateMachine } from '../../local/state-machine-runner';
import { ThrottledError } from '../../shared/errors';

/** A one-task machine whose task is throttled once and retried after an hour (as the ASL would say it). */
function flakyMachine(options: { retryIntervalScale?: number; fastWaits?: boolean }) {
  let calls = 0;
  const machine = new LocalStateMachine({
    definition: {
      StartAt: 'Flaky',
      States: {
        Flaky: {
          Type: 'Task',
          Resource: localLambdaArn('FlakyFunction'),
          Retry: [
            { ErrorEquals: ['Lambda.ServiceException'], IntervalSeconds: 7200, MaxAttempts: 2 },
            { ErrorEquals: ['Aws.Throttled'], IntervalSeconds: 3600, MaxAttempts: 2, BackoffRate: 2 },
          ],
          End: true,
        },
      },
    },
    lambdas: {
      FlakyFunction: async () => {
        calls += 1;
        if (calls === 1) throw new ThrottledError('RunInstances: Request limit exceeded');
        return { calls };
      },
    },
    ...options,
  });
  return { machine, calls: () => calls };
}

describe('local state machine runner: Retry pauses', () => {
  it('shortens a retrier\'s IntervalSeconds by retryIntervalScale, as it shortens Wait states', async () => {
    // Unscaled, the retry would come an hour later and the test would time out.
    const { machine, calls } = flakyMachine({ retryIntervalScale: 0.0001 });
    const execution = machine.start({});
    const outcome = await execution.outcome;
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { calls: 2 } });
    expect(calls()).toBe(2);
    expect(execution.history.filter((e) => e.type === 'StateRetried')).toHaveLength(1);
  });

  it('fastWaits retries at once, whatever the scale', async () => {
    const { machine } = flakyMachine({ fastWaits: true, retryIntervalScale: 1 });
    expect(await machine.start({}).outcome).toEqual({ status: 'SUCCEEDED', output: { calls: 2 } });
  });
});
