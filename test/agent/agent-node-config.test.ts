import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAgentConfig, type AgentConfigInput } from '../../shared/agent/agent-config';
import { AGENT_SCRIPT } from '../../shared/agent/commands';
import { dockerRunArgv } from '../../shared/agent/docker';
import { agentArgvFor, agentNodeConfig, nodeEnvironment, nodeLogKey, rendezvousIdFor, torchrunArgv } from '../../shared/agent/node';
import { parseRunSpec } from '../../shared/domain/run-spec';

// The node block as the agent's Python helper reads it: the same torchrun argv and environment
// as shared/agent/node.ts builds, element for element, with hostile arguments left untouched.

const dir = mkdtempSync(join(tmpdir(), 'runctl-agent-node-'));
const helper = join(dir, 'agent.py');
const start = AGENT_SCRIPT.indexOf("<<'PY'\n") + "<<'PY'\n".length;
writeFileSync(helper, AGENT_SCRIPT.slice(start, AGENT_SCRIPT.indexOf('\nPY\n', start) + 1));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const py = (args: string[]) => execFileSync('python3', [helper, ...args], { encoding: 'utf8' });
const nulSeparated = (path: string) => readFileSync(path, 'utf8').split('\0').slice(0, -1);

const hostile = ['--lr', '0.1', '$(touch canary)', "it's", 'two\nlines', '', '--nnodes', '9'];
const spec = parseRunSpec({
  name: 'ddp',
  code: { bundle: 's3://runctl-runs/bundles/abc.tar.gz', entrypoint: 'train.py' },
  args: hostile,
  instance: { types: ['g5.xlarge'] },
  nodes: 4,
  distributed: { nprocPerNode: 2, port: 29600 },
  checkpoint: { ranks: 'all' },
});

function configWith(overrides: Partial<AgentConfigInput>): string {
  const config = parseAgentConfig({
    runId: 'r-ddp',
    attempt: 3,
    region: 'us-east-1',
    bucket: 'runctl-runs',
    runPrefix: 'runs/r-ddp',
    codeBundle: 's3://runctl-runs/bundles/abc.tar.gz',
    argv: agentArgvFor(spec),
    env: { WANDB_PROJECT: 'ddp' },
    checkpoint: spec.checkpoint,
    control: { endpoint: 'https://agentapi.example.com' },
    node: agentNodeConfig(spec, { rank: 2, masterAddr: '10.0.3.17', rendezvousId: rendezvousIdFor('r-ddp', 3) }),
    ...overrides,
  });
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

describe('agent config of a node', () => {
  it('builds the torchrun argv of node.ts and the node environment, element for element', () => {
    const config = configWith({});
    const node = parseAgentConfig(JSON.parse(readFileSync(config, 'utf8'))).node;
    if (node === undefined) throw new Error('no node block');

    const assignments = py(['config', config, join(dir, 'argv'), join(dir, 'env')]);

    expect(nulSeparated(join(dir, 'argv'))).toEqual(torchrunArgv(node, ['train.py', ...hostile]));
    expect(nulSeparated(join(dir, 'argv')).slice(0, 15)).toEqual([
      'torchrun', '--nnodes', '4', '--node-rank', '2', '--master-addr', '10.0.3.17', '--master-port', '29600',
      '--nproc-per-node', '2', '--rdzv-id', 'r-ddp-a3', 'train.py', '--lr',
    ]);
    expect(nulSeparated(join(dir, 'env'))).toEqual([
      'WANDB_PROJECT=ddp', 'RUNCTL_NODE_RANK=2', 'RUNCTL_NUM_NODES=4', 'RUNCTL_MASTER_ADDR=10.0.3.17', 'RUNCTL_MASTER_PORT=29600',
    ]);
    expect(assignments).toContain("NODE_RANK=2\n");
    expect(assignments).toContain("CKPT_RANKS=all\n");
    expect(assignments).toContain(`LOG_KEY=${nodeLogKey('runs/r-ddp', 3, 2)}\n`);
    expect(nodeLogKey('runs/r-ddp', 3, 2)).toBe('runs/r-ddp/logs/attempt-3-node-2.log');
  });

  it('leaves a config without a node block as it was: the command itself, no node variables, the single-node log key', () => {
    const config = configWith({ node: undefined, argv: ['python3', 'train.py', ...hostile], checkpoint: {} });

    const assignments = py(['config', config, join(dir, 'argv1'), join(dir, 'env1')]);

    expect(nulSeparated(join(dir, 'argv1'))).toEqual(['python3', 'train.py', ...hostile]);
    expect(nulSeparated(join(dir, 'env1'))).toEqual(['WANDB_PROJECT=ddp']);
    expect(assignments).toContain('NODE_RANK=0\n');
    expect(assignments).toContain('CKPT_RANKS=rank0\n');
    expect(assignments).toContain('LOG_KEY=runs/r-ddp/logs/attempt-3.log\n');
  });

  it('runs torchrun inside the container, with the node environment passed by -e as dockerRunArgv lays it out', () => {
    const docker = { image: 'pytorch/pytorch:2.4.0', gpus: 'none' as const, mounts: [] };
    const config = configWith({ docker });
    const node = parseAgentConfig(JSON.parse(readFileSync(config, 'utf8'))).node;
    if (node === undefined) throw new Error('no node block');
    const paths = { code: '/w/code', checkpoint: '/ckpt', output: '/out' };

    py(['docker-argv', config, '', paths.code, paths.checkpoint, paths.output, '', 'none', join(dir, 'docker-argv')]);

    expect(nulSeparated(join(dir, 'docker-argv'))).toEqual(
      dockerRunArgv({
        image: docker.image,
        gpus: 'none',
        name: 'runctl-r-ddp-3',
        mounts: [paths.checkpoint, paths.output, paths.code].map((p) => ({ source: p, target: p, readOnly: false })),
        env: {
          RUNCTL_RUN_ID: 'r-ddp', RUNCTL_ATTEMPT: '3', RUNCTL_CHECKPOINT_DIR: paths.checkpoint, RUNCTL_RESUME_FROM: '', RUNCTL_OUTPUT_DIR: paths.output,
          ...nodeEnvironment(node),
        },
        userEnv: { WANDB_PROJECT: 'ddp' },
        argv: torchrunArgv(node, ['train.py', ...hostile]),
        stopSignal: 'SIGTERM',
        stopTimeoutSeconds: 90,
        workdir: paths.code,
      }),
    );
  });

  it('refuses a node whose rank is not below the count, and a script torchrun would read as an option', () => {
    const node = { rank: 1, count: 2, masterAddr: '10.0.0.1', masterPort: 29500, rendezvousId: 'r-a1', distributed: { launcher: 'torchrun' as const, nprocPerNode: 'auto' as const } };
    const base = { runId: 'r', attempt: 1, region: 'us-east-1', bucket: 'bkt', runPrefix: 'runs/r', codeBundle: 's3://bkt/bundles/x.tar.gz', control: { endpoint: 'https://a.example.com' } };

    expect(() => parseAgentConfig({ ...base, argv: ['train.py'], node: { ...node, rank: 2 } })).toThrow(/below count/);
    expect(() => parseAgentConfig({ ...base, argv: ['--standalone', 'train.py'], node })).toThrow(/not an option/);
    expect(() => parseAgentConfig({ ...base, argv: ['train.py'], node: { ...node, masterAddr: '10.0.0.1; reboot' } })).toThrow();
    expect(parseAgentConfig({ ...base, argv: ['train.py'], node }).node?.partsWaitSeconds).toBe(90);
  });
});
