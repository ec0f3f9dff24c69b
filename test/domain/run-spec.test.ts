import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RunInvalidError } from '../../shared/errors';
import { buildTrainingArgv } from '../../shared/domain/hyperparameters';
import { shellJoin } from '../../shared/domain/shell';
import { DurationSchema, parseRunSpec, RunSpecSchema, type RunSpecInput } from '../../shared/domain/run-spec';

const minimal: RunSpecInput = {
  name: 'resnet-50',
  code: { bundle: 's3://runctl-code/runs/abc/code.tar.gz', entrypoint: 'train.py' },
  instance: { types: ['g5.xlarge'] },
};

/** Parses `input` expecting failure, and returns the error. */
function rejection(input: unknown): RunInvalidError {
  try {
    parseRunSpec(input);
  } catch (error) {
    if (error instanceof RunInvalidError) return error;
    throw error;
  }
  throw new Error('expected the spec to be rejected');
}

describe('run spec defaults', () => {
  const spec = parseRunSpec(minimal);

  it.each([
    ['code.interpreter', spec.code.interpreter, 'python3'],
    ['args', spec.args, []],
    ['hyperparameters', spec.hyperparameters, {}],
    ['instance.spot', spec.instance.spot, true],
    ['instance.onDemandFallback', spec.instance.onDemandFallback, false],
    ['instance.maxSpotPriceUsd', spec.instance.maxSpotPriceUsd, undefined],
    ['instance.subnets', spec.instance.subnets, []],
    ['instance.availabilityZones', spec.instance.availabilityZones, []],
    ['instance.ami', spec.instance.ami, undefined],
    ['instance.instanceProfile', spec.instance.instanceProfile, undefined],
    ['instance.rootVolumeGiB', spec.instance.rootVolumeGiB, 100],
    ['data', spec.data, []],
    ['volume', spec.volume, undefined],
    ['docker', spec.docker, undefined],
    ['checkpoint.dir', spec.checkpoint.dir, '/opt/runctl/checkpoints'],
    ['checkpoint.intervalSeconds', spec.checkpoint.intervalSeconds, 300],
    ['checkpoint.stopSignal', spec.checkpoint.stopSignal, 'SIGTERM'],
    ['checkpoint.graceSeconds', spec.checkpoint.graceSeconds, 90],
    ['recovery.maxInterruptions', spec.recovery.maxInterruptions, 10],
    ['recovery.maxRestartsOnError', spec.recovery.maxRestartsOnError, 0],
    ['recovery.checkpointOnRebalance', spec.recovery.checkpointOnRebalance, false],
    ['recovery.maxWaitForCapacity', spec.recovery.maxWaitForCapacity, 3600],
    ['limits.maxRuntime', spec.limits.maxRuntime, 7 * 86400],
    ['limits.maxCostUsd', spec.limits.maxCostUsd, undefined],
    ['env', spec.env, {}],
    ['tags', spec.tags, {}],
    ['metricDefinitions', spec.metricDefinitions, []],
  ])('%s defaults to %j', (_field, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  it('fills a partly given section with the defaults of the rest', () => {
    const partial = parseRunSpec({ ...minimal, checkpoint: { graceSeconds: 30 }, volume: { dataset: 's3://datasets/imagenet/' } });
    expect(partial.checkpoint).toEqual({ dir: '/opt/runctl/checkpoints', intervalSeconds: 300, stopSignal: 'SIGTERM', graceSeconds: 30 });
    expect(partial.volume).toEqual({ dataset: 's3://datasets/imagenet/', mountPath: '/data', initialize: false, keep: false });
  });

  it('is stable: parsing a parsed spec gives the same spec', () => {
    expect(parseRunSpec(spec)).toEqual(spec);
  });
});

describe('run spec string forms', () => {
  it('splits instance types given as one string', () => {
    expect(parseRunSpec({ ...minimal, instance: { types: 'g5.xlarge,g6.xlarge' } }).instance.types).toEqual(['g5.xlarge', 'g6.xlarge']);
    expect(parseRunSpec({ ...minimal, instance: { types: ' g5.xlarge , g6.xlarge,' } }).instance.types).toEqual(['g5.xlarge', 'g6.xlarge']);
  });

  it('reads the CLI data form source:target', () => {
    const spec = parseRunSpec({ ...minimal, data: ['s3://bkt/p/:/data', { source: 's3://bkt/q.csv', target: '/data/q.csv' }] });
    expect(spec.data).toEqual([
      { source: 's3://bkt/p/', target: '/data' },
      { source: 's3://bkt/q.csv', target: '/data/q.csv' },
    ]);
  });

  it('reads hyperparameters given as a string', () => {
    expect(parseRunSpec({ ...minimal, hyperparameters: 'epochs=50,lr=0.001,batch_size=32' }).hyperparameters).toEqual({
      epochs: '50', lr: '0.001', batch_size: '32',
    });
  });

  it.each([
    ['90s', 90],
    ['45m', 2700],
    ['12h', 43200],
    ['7d', 604800],
    [3600, 3600],
  ])('reads the duration %j as %d seconds', (input, seconds) => {
    expect(DurationSchema.parse(input)).toBe(seconds);
    expect(parseRunSpec({ ...minimal, limits: { maxRuntime: input } }).limits.maxRuntime).toBe(seconds);
  });
});

/** [label, spec, field path, words the message must contain] */
const invalid: [string, unknown, string, string][] = [
  ['missing code.bundle', { ...minimal, code: { entrypoint: 'train.py' } }, 'code.bundle', 'is required'],
  ['bundle not in S3', { ...minimal, code: { bundle: '/tmp/code.tgz', entrypoint: 'train.py' } }, 'code.bundle', 's3://bucket/prefix/'],
  ['neither entrypoint nor command', { ...minimal, code: { bundle: 's3://bkt/c.tgz' } }, 'code.entrypoint', 'or code.command'],
  ['both entrypoint and command', { ...minimal, code: { bundle: 's3://bkt/c.tgz', entrypoint: 'a.py', command: ['b'] } }, 'code.command', 'not both'],
  ['entrypoint that is an option', { ...minimal, code: { bundle: 's3://bkt/c.tgz', entrypoint: '-c' } }, 'code.entrypoint', 'relative to the code bundle'],
  ['entrypoint escaping the bundle', { ...minimal, code: { bundle: 's3://bkt/c.tgz', entrypoint: 'src/../../x.py' } }, 'code.entrypoint', '".."'],
  ['missing name', { code: minimal.code, instance: minimal.instance }, 'name', 'is required'],
  ['bad name', { ...minimal, name: 'my run!' }, 'name', 'letters, digits'],
  ['missing instance', { name: 'r', code: minimal.code }, 'instance', 'is required'],
  ['bad instance type', { ...minimal, instance: { types: ['g5.xlarge', 'g5'] } }, 'instance.types.1', 'like g5.xlarge'],
  ['bad instance type in the string form', { ...minimal, instance: { types: 'g5.xlarge,G6' } }, 'instance.types.1', 'like g5.xlarge'],
  ['no instance type', { ...minimal, instance: { types: [] } }, 'instance.types', 'at least one instance type'],
  ['bad subnet', { ...minimal, instance: { types: 'g5.xlarge', subnets: ['sn-1'] } }, 'instance.subnets.0', 'subnet-0abc'],
  ['relative data target', { ...minimal, data: [{ source: 's3://bkt/p/', target: 'data' }] }, 'data.0.target', 'absolute path'],
  ['relative target in the CLI form', { ...minimal, data: ['s3://bkt/p/:/data', 's3://bkt/p/:data'] }, 'data.1', 's3://bucket/prefix/:/path/on/instance'],
  ['data target with ..', { ...minimal, data: ['s3://bkt/p/:/data/../etc'] }, 'data.0.target', '".."'],
  ['data source not in S3', { ...minimal, data: [{ source: 'http://x/y', target: '/data' }] }, 'data.0.source', 'S3 URI'],
  ['bad env name', { ...minimal, env: { 'MY-VAR': 'x' } }, 'env.MY-VAR', 'environment variable name'],
  ['reserved RUNCTL_ env', { ...minimal, env: { RUNCTL_RUN_ID: 'x' } }, 'env.RUNCTL_RUN_ID', 'reserved'],
  ['reserved AWS_ env', { ...minimal, env: { AWS_REGION: 'x' } }, 'env.AWS_REGION', 'reserved'],
  ['graceSeconds > 110', { ...minimal, checkpoint: { graceSeconds: 111 } }, 'checkpoint.graceSeconds', 'at most 110'],
  ['interval too short', { ...minimal, checkpoint: { intervalSeconds: 1 } }, 'checkpoint.intervalSeconds', 'at least 5'],
  ['misspelt option', { ...minimal, checkpoint: { interval: 60 } }, 'checkpoint', '"interval"'],
  ['bad duration', { ...minimal, limits: { maxRuntime: '12 hours' } }, 'limits.maxRuntime', 'like 90s, 45m, 12h or 7d'],
  ['zero duration', { ...minimal, recovery: { maxWaitForCapacity: 0 } }, 'recovery.maxWaitForCapacity', 'positive'],
  ['reserved tag key', { ...minimal, tags: { 'runctl:run': 'x' } }, 'tags.runctl:run', 'not starting with aws: or runctl:'],
  ['docker neither image nor build', { ...minimal, docker: {} }, 'docker', 'docker.image'],
  ['docker unknown word', { ...minimal, docker: 'yes' }, 'docker', 'docker: "auto"'],
  ['metric regex without a group', { ...minimal, metricDefinitions: [{ name: 'loss', regex: 'loss=\\d+' }] }, 'metricDefinitions.0.regex', 'capture group'],
  ['bad hyperparameter key', { ...minimal, hyperparameters: { 'two words': 1 } }, 'hyperparameters.two words', 'not a valid hyperparameter name'],
  ['hyperparameter kebab collision', { ...minimal, hyperparameters: 'batch_size=1,batch-size=2' }, 'hyperparameters.batch-size', 'both become --batch-size'],
  ['hyperparameter repeated in args', { ...minimal, hyperparameters: { epochs: 5 }, args: ['--epochs', '3'] }, 'hyperparameters.epochs', 'args.0'],
  ['NUL in an arg', { ...minimal, args: ['a\0b'] }, 'args.0', 'NUL'],
];

describe('invalid run specs', () => {
  it.each(invalid)('%s → %s', (_label, input, path, words) => {
    const error = rejection(input);
    expect(error.name).toBe('Run.Invalid');
    expect(error.issues).toContainEqual({ path, message: expect.stringContaining(words) });
    expect(error.message).toContain(`${path}: `);
  });

  it('reports every bad field at once', () => {
    const error = rejection({ ...minimal, instance: { types: 'g5' }, env: { RUNCTL_X: '1' }, checkpoint: { graceSeconds: 200 } });
    expect(error.issues.map((i) => i.path).sort()).toEqual(['checkpoint.graceSeconds', 'env.RUNCTL_X', 'instance.types.0']);
  });

  it('rejects what is not an object at all', () => {
    expect(rejection('train.py').issues).toEqual([{ path: '(root)', message: expect.stringContaining('object') }]);
  });

  it('keeps unknown top-level keys out of the parsed spec', () => {
    const parsed = RunSpecSchema.parse({ ...minimal, clientToken: 'abc' });
    expect(parsed).not.toHaveProperty('clientToken');
  });
});

describe('the example in docs/run-spec.md', () => {
  const doc = readFileSync(new URL('../../docs/run-spec.md', import.meta.url), 'utf8');
  const json = /```json\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';

  it('parses, and runs the command the page says it does', () => {
    const spec = parseRunSpec(JSON.parse(json));
    expect(spec.limits).toEqual({ maxRuntime: 3 * 86400, maxCostUsd: 250 });
    expect(spec.data[0]).toEqual({ source: 's3://datasets/imagenet/', target: '/data' });
    expect(doc).toContain(`\n${shellJoin(buildTrainingArgv(spec))}\n`);
  });
});
