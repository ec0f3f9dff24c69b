import { readdir, readFile } from 'node:fs/promises';

/**
 * Finding every process of a local instance. Process groups are not enough: the agent detaches
 * itself and the training script with `setsid`, which puts them in new sessions and groups.
 * What they all keep is the environment they inherited, so each local instance marks its
 * processes with an environment variable and terminate finds them by it in /proc.
 */

const PROC = '/proc';

/** Pids of the live processes whose initial environment holds exactly `name=value` (this process excluded). */
export async function findProcessesByEnv(name: string, value: string): Promise<number[]> {
  const wanted = Buffer.from(`${name}=${value}`);
  let entries: string[];
  try {
    entries = await readdir(PROC);
  } catch (error) {
    throw new Error(`Cannot list ${PROC}: the local backend needs Linux procfs to find an instance's processes`, {
      cause: error,
    });
  }
  const pids = entries.filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => pid !== process.pid);
  const matches = await Promise.all(pids.map(async (pid) => ((await environHas(pid, wanted)) ? pid : undefined)));
  return matches.filter((pid): pid is number => pid !== undefined);
}

/** Sends `signal` to each pid; a process that is already gone is skipped. Returns how many were signalled. */
export function killAll(pids: readonly number[], signal: NodeJS.Signals): number {
  let signalled = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
      signalled += 1;
    } catch (error) {
      // ESRCH: exited between the scan and the kill. EPERM: not ours to kill, so not ours at all.
      if (!isErrno(error, 'ESRCH') && !isErrno(error, 'EPERM')) throw error;
    }
  }
  return signalled;
}

/** Whether a process with this pid exists (zombies included). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return isErrno(error, 'EPERM');
  }
}

/**
 * Signals every process marked `name=value` with SIGTERM, waits up to `graceMs` for them to
 * exit, then SIGKILLs whatever is left and waits for it to be gone. Re-scans each round, so a
 * child forked during the grace period is caught too. Returns the pids seen.
 */
export async function terminateMarked(
  name: string,
  value: string,
  options: { graceMs: number; pollMs?: number; firstSignal?: NodeJS.Signals },
): Promise<number[]> {
  const pollMs = options.pollMs ?? 50;
  const seen = new Set<number>();
  const deadline = Date.now() + options.graceMs;
  const firstSignal = options.firstSignal ?? 'SIGTERM';
  if (firstSignal !== 'SIGKILL') {
    for (;;) {
      const pids = await findProcessesByEnv(name, value);
      if (pids.length === 0) return [...seen];
      const fresh = pids.filter((pid) => !seen.has(pid));
      fresh.forEach((pid) => seen.add(pid));
      killAll(fresh, firstSignal);
      if (Date.now() >= deadline) break;
      await sleep(pollMs);
    }
  }
  // Bounded: SIGKILL cannot be caught, so only a process in uninterruptible sleep outlives this.
  for (let round = 0; round < 100; round += 1) {
    const pids = await findProcessesByEnv(name, value);
    if (pids.length === 0) return [...seen];
    pids.forEach((pid) => seen.add(pid));
    killAll(pids, 'SIGKILL');
    await sleep(pollMs);
  }
  const left = await findProcessesByEnv(name, value);
  if (left.length > 0) throw new Error(`Processes ${left.join(', ')} marked ${name}=${value} survived SIGKILL`);
  return [...seen];
}

async function environHas(pid: number, wanted: Buffer): Promise<boolean> {
  let environ: Buffer;
  try {
    environ = await readFile(`${PROC}/${pid}/environ`);
  } catch {
    // Gone since the listing, or another user's process: neither can be one of ours.
    return false;
  }
  let start = 0;
  while (start < environ.length) {
    let end = environ.indexOf(0, start);
    if (end === -1) end = environ.length;
    if (end - start === wanted.length && environ.subarray(start, end).equals(wanted)) return true;
    start = end + 1;
  }
  return false;
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && 'code' in error && error.code === code;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
