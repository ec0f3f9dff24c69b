import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import { runIdFor } from '../../../shared/domain/run-identity';
import { SPEC_LIMITS } from '../../../shared/domain/spec-limits';
import { ALICE_OWNER } from '../../support/api-events';
import { RUNS_BUCKET, useCreateRunHarness } from '../../support/create-run-harness';

// Inputs that once passed validation and then broke somewhere downstream (the DynamoDB
// marshaller, the agent, exec): each is now a 400 naming the field, and nothing is stored.

const SHA = 'e'.repeat(64);

const spec = {
  name: 'hostile',
  code: { bundle: `s3://${RUNS_BUCKET}/bundles/${SHA}.tar.gz`, entrypoint: 'train.py' },
  instance: { types: ['g5.xlarge'] },
};

const manyKeys = (n: number, prefix = 'K') => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, '1']));
const nested = (depth: number): unknown => (depth === 0 ? 'x' : [nested(depth - 1)]);

describe('POST /runs refuses hostile specs, naming the field', () => {
  const harness = useCreateRunHarness({ name: 'hostile' });
  const { sfn } = harness;
  let token = 0;

  const post = async (payload: { spec?: unknown; clientToken?: string } | string) => {
    const clientToken = `hostile-${++token}`;
    const result =
      typeof payload === 'string'
        ? await harness.post({ rawBody: payload.replace('"CLIENT_TOKEN"', JSON.stringify(clientToken)) })
        : await harness.post({ body: { ...payload, clientToken } });
    // The run id a stored run would have: the owner (ALICE's role) and the client token.
    return { result, runId: runIdFor(ALICE_OWNER, clientToken) };
  };

  it('accepts the base spec (so each case below fails for its own field), stored under the run id the cases look for', async () => {
    const { result, runId } = await post({ spec });
    expect(result.statusCode).toBe(201);
    expect(await harness.deps.store.get(runId)).toBeDefined();
  });

  it.each<[string, Record<string, unknown>, string]>([
    // Locations inside the runs bucket: another run's files.
    ['a bundle under another run', { code: { bundle: `s3://${RUNS_BUCKET}/runs/r-victim/outputs/model.tar.gz`, entrypoint: 'train.py' } }, 'spec.code.bundle'],
    ['a bundle in bundles/ that is not content-addressed', { code: { bundle: `s3://${RUNS_BUCKET}/bundles/latest.tar.gz`, entrypoint: 'train.py' } }, 'spec.code.bundle'],
    ['a data source under another run', { data: [{ source: `s3://${RUNS_BUCKET}/runs/r-victim/`, target: '/data' }] }, 'spec.data.0.source'],
    ['a data source of the whole runs bucket', { data: [{ source: `s3://${RUNS_BUCKET}/`, target: '/data' }] }, 'spec.data.0.source'],
    ['a data source of runs/ in the string form', { data: ['s3://runctl-runs/runs:/data'] }, 'spec.data.0.source'],
    ['a dataset volume of runs/', { volume: { dataset: `s3://${RUNS_BUCKET}/runs/r-victim/` } }, 'spec.volume.dataset'],
    // Keys that name JavaScript object internals.
    ['a hyperparameter named constructor', { hyperparameters: { constructor: 1 } }, 'spec.hyperparameters.constructor'],
    ['an env var named constructor', { env: { constructor: 'x' } }, 'spec.env.constructor'],
    ['a tag named prototype', { tags: { prototype: 'x' } }, 'spec.tags.prototype'],
    // Numbers no store or program can take as written.
    ['an integer hyperparameter past 2^53', { hyperparameters: { seed: 2 ** 53 + 2 } }, 'spec.hyperparameters.seed'],
    ['a subnormal hyperparameter', { hyperparameters: { eps: 5e-324 } }, 'spec.hyperparameters.eps'],
    ['maxCostUsd of 1e308', { limits: { maxCostUsd: 1e308 } }, 'spec.limits.maxCostUsd'],
    ['a subnormal maxCostUsd', { limits: { maxCostUsd: 5e-324 } }, 'spec.limits.maxCostUsd'],
    ['maxSpotPriceUsd of 1e20', { instance: { types: ['g5.xlarge'], maxSpotPriceUsd: 1e20 } }, 'spec.instance.maxSpotPriceUsd'],
    ['maxRuntime of 1e308 seconds', { limits: { maxRuntime: 1e308 } }, 'spec.limits.maxRuntime'],
    ['maxRuntime of 99999999999999d', { limits: { maxRuntime: '99999999999999d' } }, 'spec.limits.maxRuntime'],
    ['maxRuntime over a year', { limits: { maxRuntime: '366d' } }, 'spec.limits.maxRuntime'],
    ['maxWaitForCapacity over a year', { recovery: { maxWaitForCapacity: 366 * 86400 } }, 'spec.recovery.maxWaitForCapacity'],
    // Sizes that break DynamoDB, Step Functions, SSM or exec.
    ['a 1 MB env value', { env: { BIG: 'x'.repeat(1_000_000) } }, 'spec.env.BIG'],
    ['a 200 KB argument', { args: ['y'.repeat(200_000)] }, 'spec.args.0'],
    ['60,000 env vars', { env: manyKeys(60_000) }, 'spec'],
    ['too many env vars', { env: manyKeys(SPEC_LIMITS.env + 1) }, 'spec.env'],
    ['too many hyperparameters', { hyperparameters: manyKeys(SPEC_LIMITS.hyperparameters + 1, 'h') }, 'spec.hyperparameters'],
    ['too many tags', { tags: manyKeys(SPEC_LIMITS.tags + 1, 't') }, 'spec.tags'],
    ['too many args', { args: Array.from({ length: SPEC_LIMITS.args + 1 }, () => 'a') }, 'spec.args'],
    ['a spec over 64 KiB in total', { args: ['z'.repeat(30_000), 'z'.repeat(30_000), 'z'.repeat(30_000)] }, 'spec'],
    ['nesting deeper than any spec needs', { tags: { deep: nested(12) } }, 'spec.tags.deep.0.0.0.0.0.0'],
    // Directories and names the agent cannot use.
    ['a checkpoint dir of /', { checkpoint: { dir: '/' } }, 'spec.checkpoint.dir'],
    ['a checkpoint dir holding the agent\'s own files', { checkpoint: { dir: '/opt/runctl' } }, 'spec.checkpoint.dir'],
    ['a checkpoint dir inside the agent\'s work dir', { checkpoint: { dir: '/opt/runctl/work/ckpt' } }, 'spec.checkpoint.dir'],
    ['a data target with a newline', { data: [{ source: 's3://datasets/a/', target: '/data\nx' }] }, 'spec.data.0.target'],
    ['an image reference holding shell text', { docker: { image: 'x$(touch canary)' } }, 'spec.docker.image'],
    ['a docker run mounting a path with ":"', { docker: { image: 'pytorch/pytorch:2.4.0' }, data: [{ source: 's3://datasets/a/', target: '/data:ro' }] }, 'spec.data.0.target'],
    // Strings that are not well-formed Unicode.
    ['a lone surrogate in an env value', { env: { MSG: 'a\ud800b' } }, 'spec.env.MSG'],
    ['a lone surrogate in an argument', { args: ['\udc00'] }, 'spec.args.0'],
    ['a lone surrogate in a hyperparameter', { hyperparameters: { msg: '\ud800' } }, 'spec.hyperparameters.msg'],
    ['a lone surrogate in a tag value', { tags: { team: '\ud83d' } }, 'spec.tags.team'],
  ])('%s', async (_label, change, path) => {
    const { result, runId } = await post({ spec: { ...spec, ...change } });

    expect(result.statusCode, result.body).toBe(400);
    const answer = JSON.parse(result.body ?? '{}') as { message: string; issues: { path: string }[] };
    expect(answer.issues.map((i) => i.path)).toContain(path);
    expect(answer.message).toContain(path);
    expect(await harness.deps.store.get(runId)).toBeUndefined();
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('names a __proto__ key (as the raw JSON carries it) instead of calling the body malformed', async () => {
    const { result, runId } = await post(`{"clientToken": "CLIENT_TOKEN", "spec": ${JSON.stringify(spec).replace(/}$/, ', "env": {"__proto__": "x"}}')}}`);

    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body ?? '{}')).toMatchObject({ issues: [{ path: 'spec.env.__proto__' }] });
    expect(await harness.deps.store.get(runId)).toBeUndefined();
  });

  it('stores well-formed astral characters and an integer at 2^53 - 1 as given', async () => {
    const { result } = await post({ spec: { ...spec, env: { EMOJI: '😀 ok' }, hyperparameters: { seed: Number.MAX_SAFE_INTEGER } } });

    expect(result.statusCode).toBe(201);
    expect(JSON.parse(result.body ?? '{}')).toMatchObject({ spec: { env: { EMOJI: '😀 ok' }, hyperparameters: { seed: '9007199254740991' } } });
  });
});
