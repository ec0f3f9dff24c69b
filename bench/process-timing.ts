import { spawn, type ChildProcess } from 'node:child_process';

/**
 * CLOCK_MONOTONIC in nanoseconds: the clock of Python's `time.monotonic_ns()` too, in a container
 * as on the host (Docker gives containers no time namespace), and unmoved by NTP steps.
 */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

/** Median and range of repeated measurements. */
export interface Sample {
  median: number;
  min: number;
  max: number;
  values: number[];
}

export function summarize(values: readonly number[]): Sample {
  if (values.length === 0) throw new RangeError('no measurements to summarize');
  const sorted = [...values].sort((a, b) => a - b);
  const at = (i: number) => sorted[i] ?? Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? at(middle) : (at(middle - 1) + at(middle)) / 2;
  return { median, min: at(0), max: at(sorted.length - 1), values: [...values] };
}

export interface Timed {
  ms: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end and times it (spawn to exit); rejects with its stderr when it fails. */
export function timed(command: string, args: readonly string[], env: NodeJS.ProcessEnv, options: { input?: string; timeoutMs?: number } = {}): Promise<Timed> {
  return new Promise((resolveTimed, reject) => {
    const started = performance.now();
    const child = spawn(command, [...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 600_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      if (code === 0) resolveTimed({ ms, stdout, stderr });
      else reject(new Error(`${command} ${args.slice(0, 3).join(' ')} … ended ${signal ?? code}: ${stderr.trim().slice(-800)}`));
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface StdoutLine {
  text: string;
  /** When it was read (ms, `performance.now()`). */
  at: number;
}

/** A process whose stdout lines are watched as they come. */
export interface Watched {
  child: ChildProcess;
  /** When it was spawned (ms, `performance.now()`). */
  startedAt: number;
  /** The first stdout line matching `pattern`, already read or still to come; rejects if the process ends first. */
  line(pattern: RegExp, timeoutMs?: number): Promise<StdoutLine>;
  /** Resolves with the exit code and when the process ended (ms, `performance.now()`). */
  exited: Promise<{ code: number | null; at: number }>;
}

export function watch(command: string, args: readonly string[], env: NodeJS.ProcessEnv, options: { detached?: boolean } = {}): Watched {
  const startedAt = performance.now();
  const child = spawn(command, [...args], { env, detached: options.detached ?? false, stdio: ['ignore', 'pipe', 'pipe'] });
  const seen: StdoutLine[] = [];
  const waiting: Array<{ pattern: RegExp; resolve: (line: StdoutLine) => void; reject: (error: Error) => void }> = [];
  let pending = '';
  let stderr = '';
  let ended: { code: number | null } | undefined;
  const endedBefore = (pattern: RegExp) =>
    new Error(`${command} ended ${String(ended?.code)} before printing a line matching ${String(pattern)}: ${stderr.trim().slice(-800)}`);
  child.stdout?.on('data', (chunk: Buffer) => {
    const at = performance.now();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const text of lines) {
      const line = { text, at };
      seen.push(line);
      for (const waiter of waiting.filter((w) => w.pattern.test(text))) {
        waiting.splice(waiting.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // A program that cannot start (ENOENT) still closes; its waiters read why.
  child.on('error', (error) => (stderr += error.message));
  const exited = new Promise<{ code: number | null; at: number }>((resolveExit) => {
    child.on('close', (code) => {
      const at = performance.now();
      ended = { code };
      for (const waiter of waiting.splice(0)) waiter.reject(endedBefore(waiter.pattern));
      resolveExit({ code, at });
    });
  });
  const line = (pattern: RegExp, timeoutMs = 120_000): Promise<StdoutLine> => {
    const hit = seen.find((l) => pattern.test(l.text));
    if (hit !== undefined) return Promise.resolve(hit);
    if (ended !== undefined) return Promise.reject(endedBefore(pattern));
    return new Promise((resolveLine, reject) => {
      const waiter = {
        pattern,
        resolve: (l: StdoutLine) => (clearTimeout(timer), resolveLine(l)),
        reject: (e: Error) => (clearTimeout(timer), reject(e)),
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(waiter), 1);
        reject(new Error(`${command} printed no line matching ${String(pattern)} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.push(waiter);
    });
  };
  return { child, startedAt, line, exited };
}
