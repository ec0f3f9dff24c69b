import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { monotonicNs, summarize, watch } from '../../bench/process-timing';

const STOP_SCRIPT = resolve(import.meta.dirname, '..', '..', 'bench', 'containers-script', 'stop_signal.py');
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

describe('summarize', () => {
  it('answers the middle value of an odd count and the mean of the two middle values of an even one', () => {
    expect(summarize([30, 10, 20])).toMatchObject({ median: 20, min: 10, max: 30 });
    expect(summarize([4, 1, 3, 2])).toMatchObject({ median: 2.5, min: 1, max: 4 });
  });

  it('refuses no measurements', () => {
    expect(() => summarize([])).toThrow(RangeError);
  });
});

describe('the stop-signal script (bench/containers-script/stop_signal.py) on the host', () => {
  it('says ready, then prints the CLOCK_MONOTONIC moment its SIGTERM handler ran and exits 0', async () => {
    const run = watch(PYTHON, [STOP_SCRIPT], process.env, { detached: true });
    await run.line(/^ready$/, 10_000);

    const sent = monotonicNs();
    process.kill(-(run.child.pid ?? 0), 'SIGTERM');
    const term = await run.line(/^term \d+$/, 10_000);
    const exit = await run.exited;

    const handled = BigInt(term.text.slice('term '.length));
    expect(handled).toBeGreaterThanOrEqual(sent);
    expect(Number(handled - sent) / 1e6).toBeLessThan(2000);
    expect(exit.code).toBe(0);
  });

  it('rejects a wait for a line the process never printed once it has ended', async () => {
    const run = watch(PYTHON, ['-c', 'print("something else")'], process.env);

    await expect(run.line(/^ready$/, 10_000)).rejects.toThrow(/ended 0 before printing a line matching/);
  });
});
