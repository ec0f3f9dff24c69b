import { describe, expect, it } from 'vitest';
import { hasNvidiaGpu } from '../../shared/domain/instance-gpus';
import { parseRunSpec } from '../../shared/domain/run-spec';
import { RunInvalidError } from '../../shared/errors';

const spec = (types: string[], docker: unknown) => ({
  name: 'gpus',
  code: { bundle: 's3://bkt/bundles/code.tar.gz', entrypoint: 'train.py' },
  instance: { types },
  docker,
});

function issuesOf(input: unknown): ReadonlyArray<{ path: string; message: string }> {
  try {
    parseRunSpec(input);
    return [];
  } catch (error) {
    if (error instanceof RunInvalidError) return error.issues;
    throw error;
  }
}

describe('GPUs of instance types and docker.gpus', () => {
  it.each([
    ['g5.xlarge', true],
    ['g6e.12xlarge', true],
    ['p4d.24xlarge', true],
    ['p6-b200.48xlarge', true],
    ['c6i.xlarge', false],
    ['m7i.large', false],
    ['g4ad.xlarge', false], // AMD GPUs: not reachable through --gpus
    ['trn1.2xlarge', false],
    ['inf2.xlarge', false],
  ])('%s has an NVIDIA GPU: %s', (type, expected) => {
    expect(hasNvidiaGpu(type)).toBe(expected);
  });

  it('defaults to auto, for the string form too', () => {
    expect(parseRunSpec(spec(['c6i.xlarge'], { image: 'pytorch/pytorch:2.4.0' })).docker).toMatchObject({ gpus: 'auto' });
    expect(parseRunSpec(spec(['c6i.xlarge'], 'auto')).docker).toBe('auto');
  });

  it('accepts explicit GPUs on GPU types and none anywhere', () => {
    expect(parseRunSpec(spec(['g5.xlarge', 'g6.xlarge'], { image: 'x/y:1', gpus: 'all' })).docker).toMatchObject({ gpus: 'all' });
    expect(parseRunSpec(spec(['g5.12xlarge'], { image: 'x/y:1', gpus: 2 })).docker).toMatchObject({ gpus: 2 });
    expect(parseRunSpec(spec(['c6i.xlarge'], { image: 'x/y:1', gpus: 'none' })).docker).toMatchObject({ gpus: 'none' });
  });

  it('refuses GPUs asked for on a type without any, naming docker.gpus and the type', () => {
    const issues = issuesOf(spec(['g5.xlarge', 'c6i.xlarge', 'm7i.large'], { image: 'x/y:1', gpus: 'all' }));

    expect(issues).toEqual([expect.objectContaining({ path: 'docker.gpus' })]);
    expect(issues[0]?.message).toContain('c6i.xlarge, m7i.large have no NVIDIA GPU');
    expect(issuesOf(spec(['c6i.xlarge'], { build: {}, gpus: 1 }))[0]?.path).toBe('docker.gpus');
    expect(issuesOf(spec(['g5.xlarge'], { image: 'x/y:1', gpus: 'some' }))[0]?.path).toBe('docker.gpus');
  });
});
