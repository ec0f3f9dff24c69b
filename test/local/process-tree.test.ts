import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { findProcessesByEnv, isAlive, killAll, terminateMarked } from '../../local/process-tree';

const MARK = 'RUNCTL_TEST_MARK';
const marks: string[] = [];

/** Starts `bash -c script` detached, marked with a fresh value; returns the mark and the pid. */
function startMarked(script: string): { mark: string; pid: number } {
  const mark = randomUUID();
  marks.push(mark);
  const child = spawn('bash', ['-c', script], { env: { ...process.env, [MARK]: mark }, detached: true, stdio: 'ignore' });
  child.unref();
  if (child.pid === undefined) throw new Error('bash did not start');
  return { mark, pid: child.pid };
}

async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}

afterEach(async () => {
  for (const mark of marks.splice(0)) await terminateMarked(MARK, mark, { graceMs: 0, firstSignal: 'SIGKILL' });
});

describe('findProcessesByEnv', () => {
  it('finds a marked process and its setsid-detached grandchild, and nothing with another mark', async () => {
    const { mark, pid } = startMarked('setsid sleep 300 </dev/null >/dev/null 2>&1 & sleep 300');

    const pids = await eventually(() => findProcessesByEnv(MARK, mark), (found) => found.length >= 3);

    expect(pids).toContain(pid);
    expect(pids.length).toBeGreaterThanOrEqual(3);
    expect(await findProcessesByEnv(MARK, `${mark}-other`)).toEqual([]);
    expect(await findProcessesByEnv(MARK, mark.slice(0, 8))).toEqual([]);
  });
});

describe('killAll', () => {
  it('signals live processes and skips pids that are gone', async () => {
    const { mark, pid } = startMarked('sleep 300');
    await eventually(() => findProcessesByEnv(MARK, mark), (found) => found.includes(pid));

    const signalled = killAll([pid, 2_147_483_646], 'SIGKILL');

    expect(signalled).toBe(1);
    expect(await eventually(async () => isAlive(pid), (alive) => !alive)).toBe(false);
  });
});

describe('terminateMarked', () => {
  it('escalates to SIGKILL for a process that ignores SIGTERM, leaving no marked process', async () => {
    const { mark } = startMarked("trap '' TERM; setsid bash -c \"trap '' TERM; sleep 300\" </dev/null >/dev/null 2>&1 & sleep 300");
    // The outer shell, its sleep, and the detached shell (bash may exec its last command in place).
    const before = await eventually(() => findProcessesByEnv(MARK, mark), (found) => found.length >= 3);

    const seen = await terminateMarked(MARK, mark, { graceMs: 200 });

    expect(before.length).toBeGreaterThanOrEqual(3);
    expect(seen).toEqual(expect.arrayContaining(before));
    expect(await findProcessesByEnv(MARK, mark)).toEqual([]);
  });

  it('returns at once when nothing carries the mark', async () => {
    expect(await terminateMarked(MARK, randomUUID(), { graceMs: 5_000 })).toEqual([]);
  });
});
