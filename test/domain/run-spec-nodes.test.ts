import { describe, expect, it } from 'vitest';
import { parseRunSpec, type RunSpecInput } from '../../shared/domain/run-spec';
import { specHash } from '../../shared/domain/run-identity';
import { MAX_NODES, nodeCount, nodeLimitOf } from '../../shared/domain/multi-node';
import { RunInvalidError } from '../../shared/errors';

const minimal: RunSpecInput = {
  name: 'ddp',
  code: { bundle: 's3://runctl-code/bundles/abc.tar.gz', entrypoint: 'train.py' },
  instance: { types: ['g5.xlarge'] },
};

/** The field issues of a spec that must be refused. */
function issuesOf(input: unknown): { path: string; message: string }[] {
  try {
    parseRunSpec(input);
  } catch (error) {
    if (error instanceof RunInvalidError) return [...error.issues];
    throw error;
  }
  throw new Error('expected the spec to be rejected');
}

describe('multi-node spec fields', () => {
  it('leaves nodes, distributed and checkpoint.ranks out of a single-node spec, so its hash does not change', () => {
    const spec = parseRunSpec(minimal);

    expect(spec.nodes).toBeUndefined();
    expect(spec.distributed).toBeUndefined();
    expect(spec.checkpoint.ranks).toBeUndefined();
    expect(nodeCount(spec)).toBe(1);
    expect(Object.keys(spec)).not.toContain('nodes');
    expect(Object.keys(spec.checkpoint)).not.toContain('ranks');
    // Saying the defaults out loud is another spec (another hash), but the same run.
    expect(specHash(spec)).not.toBe(specHash(parseRunSpec({ ...minimal, nodes: 1 })));
  });

  it('fills distributed with torchrun, nprocPerNode auto and port 29500', () => {
    const spec = parseRunSpec({ ...minimal, nodes: 4, distributed: {} });

    expect(spec.distributed).toEqual({ launcher: 'torchrun', nprocPerNode: 'auto', port: 29500 });
    expect(nodeCount(spec)).toBe(4);
  });

  it.each([
    [{ nodes: 2, distributed: { launcher: 'torchrun', nprocPerNode: 8, port: 1024 } }],
    [{ nodes: MAX_NODES }],
    // torchrun on one node is a normal way to run several processes.
    [{ nodes: 1, distributed: { nprocPerNode: 'auto' } }],
    // Sharded checkpoints of one node: one part, as harmless as it is useless.
    [{ nodes: 1, checkpoint: { ranks: 'all' } }],
    [{ nodes: 3, checkpoint: { ranks: 'rank0' } }],
    // A command that reads RUNCTL_NODE_RANK and friends, without torchrun.
    [{ nodes: 2, code: { bundle: minimal.code.bundle, command: ['bash', 'launch.sh'] } }],
  ])('accepts %j', (fields) => {
    expect(() => parseRunSpec({ ...minimal, ...fields })).not.toThrow();
  });

  it.each([
    [{ nodes: 0 }, 'nodes', 'must be at least 1'],
    [{ nodes: MAX_NODES + 1 }, 'nodes', `must be at most ${MAX_NODES}`],
    [{ nodes: 2.5 }, 'nodes', 'whole number'],
    [{ nodes: '2' }, 'nodes', 'number of nodes'],
    [{ distributed: { launcher: 'deepspeed' } }, 'distributed.launcher', 'must be "torchrun"'],
    [{ distributed: { nprocPerNode: 0 } }, 'distributed.nprocPerNode', 'at least 1'],
    [{ distributed: { nprocPerNode: 'many' } }, 'distributed.nprocPerNode', '"auto" or a number'],
    [{ distributed: { port: 80 } }, 'distributed.port', 'at least 1024'],
    [{ distributed: { port: 70000 } }, 'distributed.port', 'at most 65535'],
    [{ distributed: { nodes: 2 } }, 'distributed', 'nodes'],
    [{ checkpoint: { ranks: 'some' } }, 'checkpoint.ranks', '"rank0"'],
  ])('refuses %j at %s', (fields, path, message) => {
    const issues = issuesOf({ ...minimal, ...fields });

    expect(issues.map((i) => i.path)).toContain(path);
    expect(issues.find((i) => i.path === path)?.message).toContain(message);
  });

  it('refuses more nodes than a listed type holds, naming the type, the reason and what to use instead', () => {
    const issues = issuesOf({ ...minimal, nodes: 2, instance: { types: ['c6i.large', 't3.large'] } });

    const limit = issues.find((i) => i.message.includes('t3.large runs at most 1 node per run (burstable types'));
    expect(limit?.path).toBe('nodes');
    expect(limit?.message).toContain('use another instance type');
    // One node of the same type is a plain single-node run.
    expect(() => parseRunSpec({ ...minimal, nodes: 1, instance: { types: ['t3.large'] } })).not.toThrow();
  });

  it('knows no node limit below MAX_NODES for GPU and general-purpose types', () => {
    for (const type of ['g5.xlarge', 'p4d.24xlarge', 'p5.48xlarge', 'c6i.large', 'm7i.xlarge']) {
      expect(nodeLimitOf(type)).toEqual({ max: MAX_NODES });
    }
    expect(nodeLimitOf('t4g.micro').max).toBe(1);
  });

  it('refuses a dataset volume on more than one node, saying to give the dataset as data', () => {
    const issues = issuesOf({ ...minimal, nodes: 2, volume: { dataset: 's3://datasets/imagenet/' } });
    expect(issues).toContainEqual({ path: 'volume', message: expect.stringContaining('attaches to one instance at a time; give the dataset as data') });
    expect(() => parseRunSpec({ ...minimal, nodes: 1, volume: { dataset: 's3://datasets/imagenet/' } })).not.toThrow();
  });

  it('refuses torchrun with a code.command, and with an interpreter torchrun would ignore', () => {
    const withCommand = issuesOf({ ...minimal, nodes: 2, distributed: {}, code: { bundle: minimal.code.bundle, command: ['python3', 'train.py'] } });
    const withInterpreter = issuesOf({ ...minimal, nodes: 2, distributed: {}, code: { ...minimal.code, interpreter: 'python3.11' } });

    expect(withCommand).toContainEqual({ path: 'code.command', message: expect.stringContaining('RUNCTL_NODE_RANK') });
    expect(withInterpreter).toContainEqual({ path: 'code.interpreter', message: expect.stringContaining('torchrun runs the entrypoint with its own Python') });
  });

  it('accepts more than one node where runs are submitted (the API, schedules, sweeps, ValidateRun)', () => {
    const context = { runsBucket: 'runctl-runs' };
    expect(nodeCount(parseRunSpec({ ...minimal, nodes: 2 }, context))).toBe(2);
    expect(() => parseRunSpec({ ...minimal, nodes: 4, distributed: {} }, context)).not.toThrow();
  });

});
