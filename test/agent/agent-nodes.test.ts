import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { z } from 'zod';
import { checkpointNowCommand } from '../../shared/agent/commands';
import type { AgentNodeInput } from '../../shared/agent/node';
import { torchrunArgv } from '../../shared/agent/node';
import { AgentWorld, BUCKET, waitFor, type Launched, type LaunchOptions } from './agent-harness';

// Two real agents, one per node of a run's attempt, against the local S3: the node environment,
// torchrun's argv, per-node logs, rank 0's metrics, and sharded checkpoints coordinated through S3.

vi.setConfig({ testTimeout: 180_000 });

const world = new AgentWorld();
const SCRIPT = fileURLToPath(new URL('./node-train.py', import.meta.url));
const fakeBin = mkdtempSync(join(tmpdir(), 'runctl-fake-torchrun-'));
beforeAll(async () => {
  copyFileSync(fileURLToPath(new URL('./fake-torchrun.sh', import.meta.url)), join(fakeBin, 'torchrun'));
  chmodSync(join(fakeBin, 'torchrun'), 0o755);
  await world.start();
});
afterAll(async () => {
  await world.stop();
  rmSync(fakeBin, { recursive: true, force: true });
});

const ReceivedSchema = z.object({
  argv: z.array(z.string()),
  env: z.record(z.string(), z.string()),
  restored: z.record(z.string(), z.string()),
});
const received = (run: Launched) => ReceivedSchema.parse(JSON.parse(readFileSync(join(run.root, 'opt/runctl/output/received.json'), 'utf8')));
const PointerSchema = z.object({ uri: z.string(), attempt: z.number(), seq: z.number(), files: z.number(), ranks: z.number().optional() });
const CompleteSchema = z.object({ id: z.string(), ranks: z.number(), paths: z.array(z.object({ key: z.string(), bytes: z.number() })) });

function node(rank: number, extra: Partial<AgentNodeInput> = {}): AgentNodeInput {
  return { rank, count: 2, masterAddr: '127.0.0.1', masterPort: 29500, rendezvousId: 'rdzv-a1', ...extra };
}

/** Launches rank 0, then rank 1 as another instance of the same attempt. */
async function launchNodes(options: (rank: number) => LaunchOptions): Promise<[Launched, Launched]> {
  const first = await world.launch(options(0));
  const second = await world.launch({ ...options(1), runId: first.runId, attempt: first.attempt, joinAttempt: true });
  return [first, second];
}

/** Waits for every node's agent to exit; on a timeout, fails with their logs. */
async function exited(...runs: Launched[]): Promise<void> {
  try {
    await Promise.all(runs.map((run) => run.waitForAgentExit()));
  } catch (error) {
    const logs = runs.map((run) => { try { return readFileSync(join(run.stateDir, 'agent.log'), 'utf8'); } catch { return '(no agent.log)'; } });
    throw new Error(`${String(error)}\n${logs.join('\n---\n')}`);
  }
}

const jsonLines = (text: string | undefined) => (text ?? '').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('agent: a node of a multi-node run', () => {
  it('starts torchrun with the rendezvous, every argument literally, and the node environment', async () => {
    const record = join(world.newRoot(), 'torchrun.json');
    const hostile = ['--lr', '$(touch canary)', "it's", 'two\nlines', ''];
    const nodeBlock = node(1, { masterAddr: '10.1.2.3', masterPort: 29611, rendezvousId: 'r-x-a4', distributed: { launcher: 'torchrun', nprocPerNode: 'auto' } });
    const run = await world.launch({
      attempt: 4,
      argv: [SCRIPT, ...hostile],
      env: { NODE_MODE: 'periodic', NODE_SECONDS: '0.5', FAKE_TORCHRUN_RECORD: record },
      config: { node: nodeBlock },
      instanceEnv: { PATH: `${fakeBin}:${process.env.PATH}` },
    });

    const outcome = await run.outcome;
    await run.waitForAgentExit();

    expect(outcome.kind).toBe('success');
    const launched = z.object({ argv: z.array(z.string()), env: z.record(z.string(), z.string()) }).parse(JSON.parse(readFileSync(record, 'utf8')));
    expect(['torchrun', ...launched.argv]).toEqual(torchrunArgv({ ...nodeBlock, distributed: { launcher: 'torchrun', nprocPerNode: 'auto' } }, [SCRIPT, ...hostile]));
    expect(launched.argv.slice(0, 14)).toEqual(['--nnodes', '2', '--node-rank', '1', '--master-addr', '10.1.2.3', '--master-port', '29611', '--nproc-per-node', 'auto', '--rdzv-id', 'r-x-a4', SCRIPT, '--lr']);
    // The script torchrun started got its arguments untouched and the node's environment.
    const got = received(run);
    expect(got.argv).toEqual(hostile);
    expect(got.env).toMatchObject({ RUNCTL_NODE_RANK: '1', RUNCTL_NUM_NODES: '2', RUNCTL_MASTER_ADDR: '10.1.2.3', RUNCTL_MASTER_PORT: '29611', RUNCTL_ATTEMPT: '4' });
    expect(existsSync(join(run.root, 'opt/runctl/work/code/canary'))).toBe(false);
  });

  it('two nodes: each log under its own key, metrics and outputs from rank 0 alone, the checkpoint rank 0 wrote', async () => {
    const [rank0, rank1] = await launchNodes((rank) => ({
      argv: ['python3', SCRIPT],
      // Rank 1 trains longer, so its steps go past anything rank 0 reported.
      env: { NODE_MODE: 'periodic', NODE_SECONDS: rank === 0 ? '1.5' : '3' },
      config: { node: node(rank), checkpoint: { intervalSeconds: 1 } },
    }));

    await exited(rank0, rank1);
    expect((await rank0.outcome).kind).toBe('success');

    const prefix = `runs/${rank0.runId}`;
    expect(await world.keys(`${prefix}/logs/`)).toEqual([`${prefix}/logs/attempt-1-node-1.log`, `${prefix}/logs/attempt-1.log`]);
    const log1 = (await world.text(`${prefix}/logs/attempt-1-node-1.log`)) ?? '';
    expect(log1).toContain('node 1 of 2');
    expect(log1).toContain('"rank": 1');
    expect((await world.text(`${prefix}/logs/attempt-1.log`)) ?? '').not.toContain('"rank": 1');
    // Every metric row is rank 0's, though rank 1 printed more steps.
    const metrics = jsonLines(await world.text(`${prefix}/metrics.jsonl`));
    expect(metrics.length).toBeGreaterThan(0);
    expect(metrics.every((row) => row.rank === 0)).toBe(true);
    const rank1Steps = [...log1.matchAll(/"step": (\d+)/g)].map((m) => Number(m[1]));
    expect(Math.max(...rank1Steps)).toBeGreaterThan(Math.max(...metrics.map((row) => Number(row.step))));
    expect((await world.keys(`${prefix}/live/`)).filter((k) => k.includes('node-1/metrics-'))).toEqual([]);
    // Outputs and the checkpoint are rank 0's alone.
    expect(await world.text(`${prefix}/outputs/model.bin`)).toMatch(/^rank 0 after \d+ steps$/);
    const checkpoints = await world.keys(`${prefix}/checkpoints/`);
    expect(checkpoints.some((k) => k.endsWith('/_COMPLETE.json'))).toBe(true);
    for (const key of checkpoints.filter((k) => k.endsWith('/shard.json'))) {
      expect(JSON.parse((await world.text(key)) ?? '').rank).toBe(0);
    }
  });
});

describe('agent: sharded checkpoints (checkpoint.ranks "all")', () => {
  it('two ranks write one complete checkpoint, and each rank of the next attempt restores its own part', async () => {
    const release = join(world.newRoot(), 'release');
    const [rank0, rank1] = await launchNodes((rank) => ({
      argv: ['python3', SCRIPT],
      env: { NODE_MODE: 'periodic', NODE_UNTIL_FILE: release },
      config: { node: node(rank, { partsWaitSeconds: 30 }), checkpoint: { intervalSeconds: 1, ranks: 'all' } },
    }));
    const prefix = `runs/${rank0.runId}`;
    const complete = async () => (await world.keys(`${prefix}/checkpoints/`)).filter((k) => k.endsWith('/_COMPLETE.json'));
    // A periodic round completes while both train.
    await waitFor(async () => (await complete()).length >= 1, 'a complete periodic checkpoint', 90_000);
    writeFileSync(release, '');
    await exited(rank0, rank1);
    expect((await rank0.outcome).kind).toBe('success');

    // The final round is the latest, complete, with both ranks' parts listed and present.
    const latest = PointerSchema.parse(JSON.parse((await world.text(`${prefix}/checkpoints/latest.json`)) ?? ''));
    expect(latest.ranks).toBe(2);
    const base = latest.uri.replace(`s3://${BUCKET}/`, '');
    const marker = CompleteSchema.parse(JSON.parse((await world.text(`${base}_COMPLETE.json`)) ?? ''));
    expect(marker.paths.map((p) => p.key)).toEqual(['rank-0/shard.json', 'rank-1/shard.json']);
    expect(latest.files).toBe(2);
    const shardTexts = await Promise.all([0, 1].map(async (r) => (await world.text(`${base}rank-${r}/shard.json`)) ?? ''));
    const shards = shardTexts.map((text) => JSON.parse(text));
    expect(shards.map((s) => s.rank)).toEqual([0, 1]);
    // Each rank saved until the release: the final parts are their last saves.
    expect(shards[1].step).toBe(JSON.parse(readFileSync(join(rank1.root, 'opt/runctl/checkpoints/shard.json'), 'utf8')).step);
    expect(await world.keys(`${base}_parts/`)).toEqual([`${base}_parts/rank-0.json`, `${base}_parts/rank-1.json`]);
    // Every complete checkpoint lists exactly the files that are there.
    for (const key of await complete()) {
      const listed = CompleteSchema.parse(JSON.parse((await world.text(key)) ?? ''));
      const dir = key.replace('_COMPLETE.json', '');
      expect(listed.paths.map((p) => p.key)).toEqual(['rank-0/shard.json', 'rank-1/shard.json']);
      for (const p of listed.paths) expect(await world.text(`${dir}${p.key}`)).toBeDefined();
    }
    // Rank 1 reported the checkpoint rank 0 completed.
    const rank1Log = (await world.text(`${prefix}/logs/attempt-1-node-1.log`)) ?? '';
    expect(rank1Log).toContain(`checkpoint ${marker.id}: rank 1's part uploaded`);

    const [next0, next1] = await launchNodes((rank) => ({
      runId: rank0.runId,
      attempt: 2,
      argv: ['python3', SCRIPT],
      env: { NODE_MODE: 'fail' },
      resumeFrom: latest.uri,
      config: { node: node(rank, { rendezvousId: 'rdzv-a2' }), checkpoint: { ranks: 'all' } },
    }));
    await exited(next0, next1);
    for (const [rank, run] of [next0, next1].entries()) {
      expect(received(run).restored).toEqual({ 'shard.json': shardTexts[rank] });
    }
  });

  it('on a spot warning to both nodes, every rank saves its part of one last checkpoint, and both report it', async () => {
    const [rank0, rank1] = await launchNodes((rank) => ({
      argv: ['python3', SCRIPT],
      env: { NODE_MODE: 'periodic', NODE_SECONDS: '100' },
      config: { node: node(rank, { partsWaitSeconds: 30 }), checkpoint: { intervalSeconds: 1, ranks: 'all' } },
    }));
    const prefix = `runs/${rank0.runId}`;
    await waitFor(async () => (await world.keys(`${prefix}/checkpoints/`)).some((k) => k.endsWith('/_COMPLETE.json')), 'a complete periodic checkpoint', 90_000);

    // The control plane tells every node of the attempt (the wiring's part), here at once.
    await Promise.all([rank0, rank1].map((run) => world.runOnInstance(run.root, checkpointNowCommand(run.runId, 1))));
    const outcome = await rank0.outcome;
    await exited(rank0, rank1);
    // On a failure below, both ranks' attempt logs (the agent's [runctl] lines) say what each did.
    onTestFailed(() => {
      for (const [rank, run] of [rank0, rank1].entries()) {
        const log = join(run.stateDir, 'upload/logs', `attempt-1${rank === 0 ? '' : `-node-${rank}`}.log`);
        console.error(`--- rank ${rank}: ${log}\n${existsSync(log) ? readFileSync(log, 'utf8') : '(none)'}`);
      }
      console.error(`--- rank 0 outcome: ${JSON.stringify(outcome)}`);
    });

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Spot.Interrupted' });
    const latest = PointerSchema.parse(JSON.parse((await world.text(`${prefix}/checkpoints/latest.json`)) ?? ''));
    const id = latest.uri.replace(`s3://${BUCKET}/${prefix}/checkpoints/`, '').replace(/\/$/, '');
    const marker = CompleteSchema.parse(JSON.parse((await world.text(`${prefix}/checkpoints/${id}/_COMPLETE.json`)) ?? ''));
    expect(marker.paths.map((p) => p.key)).toEqual(['rank-0/shard.json', 'rank-1/shard.json']);
    // The last round holds each rank's last save before the stop signal.
    for (const [rank, run] of [rank0, rank1].entries()) {
      const saved = readFileSync(join(run.root, 'opt/runctl/checkpoints/shard.json'), 'utf8');
      expect(await world.text(`${prefix}/checkpoints/${id}/rank-${rank}/shard.json`)).toBe(saved);
    }
    for (const key of [`${prefix}/logs/attempt-1.log`, `${prefix}/logs/attempt-1-node-1.log`]) {
      expect((await world.text(key)) ?? '').toContain(`checkpoint ${id} is in S3 and is the one the next attempt resumes from`);
    }
  });

  it('fails the prechecks of a rank whose part the checkpoint does not hold', async () => {
    const runId = 'run-nodes-missing-part';
    const base = `runs/${runId}/checkpoints/0001-000002/`;
    await world.put(`${base}rank-0/shard.json`, '{"rank": 0, "step": 9}');
    await world.put(`${base}_COMPLETE.json`, JSON.stringify({ id: '0001-000002', ranks: 1, paths: [{ key: 'rank-0/shard.json', bytes: 22 }] }));

    const run = await world.launch({
      runId,
      attempt: 2,
      argv: ['python3', SCRIPT],
      env: { NODE_MODE: 'fail' },
      resumeFrom: `s3://${BUCKET}/${base}`,
      config: { node: node(1), checkpoint: { ranks: 'all' } },
    });
    const outcome = await run.outcome;
    await exited(run);

    expect(outcome).toMatchObject({ kind: 'failure', error: 'Run.PrecheckFailed', cause: { reason: expect.stringContaining('could not be restored') } });
    expect(existsSync(join(run.root, 'opt/runctl/output/received.json'))).toBe(false);
  });

  it('leaves a round without every part incomplete: no _COMPLETE.json, no latest pointer', async () => {
    // Rank 1 of two never starts: rank 0's rounds wait for its part, then give up.
    const run = await world.launch({
      argv: ['python3', SCRIPT],
      env: { NODE_MODE: 'periodic', NODE_SECONDS: '2' },
      config: { node: node(0, { partsWaitSeconds: 1.5 }), checkpoint: { intervalSeconds: 1, ranks: 'all' } },
    });

    const outcome = await run.outcome;
    await run.waitForAgentExit();

    const prefix = `runs/${run.runId}`;
    const keys = await world.keys(`${prefix}/checkpoints/`);
    expect(keys.some((k) => k.endsWith('/rank-0/shard.json'))).toBe(true);
    expect(keys.filter((k) => k.endsWith('_COMPLETE.json') || k.endsWith('latest.json'))).toEqual([]);
    expect(outcome).toMatchObject({ kind: 'success', output: { checkpoint: null } });
    expect((await world.text(`${prefix}/logs/attempt-1.log`)) ?? '').toContain('is incomplete (not every rank\'s part came in)');
  });
});
