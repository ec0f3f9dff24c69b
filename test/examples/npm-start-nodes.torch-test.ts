import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { npmStart } from '../support/npm-start';

// `npm start -- --nodes 2` (docs/multi-node.md): examples/ddp with PyTorch DDP across two local
// nodes through the real train-run machine; node 1 is warned after epoch 3, replaced alone while
// node 0 keeps its instance, and the loss goes on from the checkpoint.

let root: string | undefined;
afterEach(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
  root = undefined;
});

describe('npm start -- --nodes 2', () => {
  it('trains examples/ddp on two nodes, replaces only the interrupted node, and resumes the loss from the checkpoint', async () => {
    root = await mkdtemp(join(tmpdir(), 'runctl-npm-start-nodes-'));
    const { code, stdout, stderr } = await npmStart(['--root', root, '--nodes', '2'], 420_000);

    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/⚡ spot interruption warning for node 1 \(i-local[0-9a-f]+, attempt 1\)/);
    expect(stdout).toMatch(/^Recovered by replacing node 1 alone \(i-local[0-9a-f]+ → i-local[0-9a-f]+\); 1 node kept its instance\.$/m);
    expect(stdout).toMatch(/attempt 2 \(SUCCEEDED\): node 0 i-local[0-9a-f]+ \(kept\), node 1 i-local[0-9a-f]+$/m);
    // The loss by epoch: attempt 2 starts after the checkpointed epoch and trains to the last.
    const epochs = [...stdout.matchAll(/^ {2}attempt (\d) epoch (\d+): loss (\d+\.\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
    const second = epochs.filter(([attempt]) => attempt === 2);
    expect(second.length).toBeGreaterThan(0);
    const firstOfSecond = second[0]?.[1] ?? 0;
    expect(epochs.filter(([attempt, epoch]) => attempt === 1 && epoch === firstOfSecond - 1)).toHaveLength(1);
    expect(second.at(-1)?.[1]).toBe(8);
    expect(second.at(-1)?.[2]).toBeLessThan(epochs[0]?.[2] ?? 0);
  }, 480_000);
});
