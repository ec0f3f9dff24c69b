import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeEnvironment, torchrunArgv } from '../../shared/agent/node';

// examples/ddp/train.py across two "nodes" on loopback: two torchrun processes, each started
// with the argv and environment an agent gives its node (shared/agent/node.ts), interrupted with
// SIGTERM to each process group as the agents do, resumed from the checkpoint as the next
// attempt's agents restore it, and compared with a run that was never interrupted (started as a
// code.command: one process per node joining from RUNCTL_NODE_*).

const SCRIPT = fileURLToPath(new URL('../../examples/ddp/train.py', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'runctl-ddp-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Finished {
  code: number | null;
  lines: Array<Record<string, unknown>>;
  output: string;
}

interface Node {
  child: ChildProcess;
  done: Promise<Finished>;
  lines: () => Array<Record<string, unknown>>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const parse = (text: string) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

type Launch = 'torchrun' | 'command';

/**
 * One node, in a process group of its own, as the agent starts it: through torchrun (spec
 * `distributed`), or the script itself reading RUNCTL_NODE_* (a `code.command`).
 */
function startNode(launch: Launch, rank: number, attempt: number, port: number, dirs: { checkpoint: string; output: string; resume: string }, args: string[]): Node {
  const node = { rank, count: 2, masterAddr: '127.0.0.1', masterPort: port, rendezvousId: `r-ddp-a${attempt}`, distributed: { launcher: 'torchrun' as const, nprocPerNode: 1 } };
  const [program, ...argv] = launch === 'torchrun' ? torchrunArgv(node, [SCRIPT, ...args]) : ['python3', SCRIPT, ...args];
  const child = spawn(program ?? 'torchrun', argv, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...nodeEnvironment(node),
      RUNCTL_RUN_ID: 'r-ddp',
      RUNCTL_ATTEMPT: String(attempt),
      RUNCTL_CHECKPOINT_DIR: dirs.checkpoint,
      RUNCTL_OUTPUT_DIR: dirs.output,
      RUNCTL_RESUME_FROM: dirs.resume,
      OMP_NUM_THREADS: '1',
    },
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const done = new Promise<Finished>((resolve) => child.on('exit', (code) => resolve({ code, lines: parse(output), output })));
  return { child, done, lines: () => parse(output) };
}

async function startNodes(launch: Launch, attempt: number, name: string, resumeFrom: (rank: number) => string, args: string[]): Promise<Node[]> {
  const port = await freePort();
  return [0, 1].map((rank) =>
    startNode(launch, rank, attempt, port, { checkpoint: join(root, name, `node-${rank}`, 'checkpoints'), output: join(root, name, `node-${rank}`, 'output'), resume: resumeFrom(rank) }, args),
  );
}

const losses = (lines: Array<Record<string, unknown>>) => new Map(lines.filter((l) => l.event === undefined && typeof l.epoch === 'number').map((l) => [l.epoch as number, l.loss as number]));

/** Finished, or fails with what the node printed. */
async function finished(node: Node): Promise<Finished> {
  const result = await node.done;
  if (result.code !== 0) throw new Error(`torchrun exited ${result.code}:\n${result.output.slice(-3000)}`);
  return result;
}

describe('examples/ddp on two nodes', () => {
  it('trains with DDP over gloo, stops on SIGTERM with a checkpoint, and resumes with the loss going on as if never stopped', async () => {
    if (spawnSync('python3', ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
      throw new Error('This suite runs the PyTorch example: install torch (CPU) with `python3 -m pip install torch`');
    }
    const args = ['--epochs', '4', '--min-epoch-seconds', '0.1'];

    // Uninterrupted, the reference: one process per node started directly, from RUNCTL_NODE_*.
    const whole = await Promise.all((await startNodes('command', 1, 'whole', () => '', args)).map(finished));
    // Interrupted: held after epoch 2's checkpoint, then both process groups get SIGTERM.
    const first = await startNodes('torchrun', 1, 'first', () => '', [...args, '--hold-after-epoch', '2']);
    await expect.poll(() => first[0]?.lines().some((l) => l.event === 'holding'), { timeout: 45_000, interval: 100 }).toBe(true);
    for (const node of first) process.kill(-(node.child.pid ?? 0), 'SIGTERM');
    const stopped = await Promise.all(first.map((node) => node.done));
    // Every node of the next attempt restores the same checkpoint: rank 0's (checkpoint.ranks rank0).
    const checkpoint = join(root, 'first', 'node-0', 'checkpoints');
    const resumeDirs = [0, 1].map((rank) => join(root, 'second', `resume-${rank}`));
    for (const dir of resumeDirs) cpSync(checkpoint, dir, { recursive: true });
    const second = await Promise.all((await startNodes('torchrun', 2, 'second', (rank) => resumeDirs[rank] ?? '', args)).map(finished));

    const reference = losses(whole[0]?.lines ?? []);
    expect([...reference.keys()]).toEqual([1, 2, 3, 4]);
    expect(reference.get(4)).toBeLessThan(reference.get(1) ?? 0);
    expect(whole[0]?.lines.find((l) => l.event === 'start')).toMatchObject({ world_size: 2, nodes: 2 });
    // Metrics are rank 0's: node 1 prints none.
    expect(losses(whole[1]?.lines ?? []).size).toBe(0);

    expect(losses(stopped[0]?.lines ?? [])).toEqual(new Map([[1, reference.get(1)], [2, reference.get(2)]]));
    expect(stopped[0]?.lines.some((l) => l.event === 'stopping' && l.checkpoint_epoch === 2)).toBe(true);
    expect(readdirSync(checkpoint)).toEqual(['model.pt']);
    expect(existsSync(join(root, 'first', 'node-1', 'checkpoints'))).toBe(false);
    expect(existsSync(join(root, 'first', 'node-0', 'output', 'model.pt'))).toBe(false);

    // The resumed attempt starts at epoch 3 from epoch 2's loss and trains exactly as the run that
    // was never stopped (which was launched the other way: both launches make the same job).
    const resumed = losses(second[0]?.lines ?? []);
    expect(second[0]?.lines.find((l) => l.event === 'resumed')).toMatchObject({ epoch: 2 });
    expect([...resumed.keys()]).toEqual([3, 4]);
    for (const epoch of [3, 4]) expect(resumed.get(epoch)).toBeCloseTo(reference.get(epoch) ?? Number.NaN, 5);
    expect(existsSync(join(root, 'second', 'node-0', 'output', 'model.pt'))).toBe(true);
    expect(existsSync(join(root, 'second', 'node-1', 'output', 'model.pt'))).toBe(false);
  }, 120_000);
});
