import { spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * `npm start -- ARGS`, the README's first command, as a user runs it. After `timeoutMs` it gets
 * SIGINT (what Ctrl-C sends), and if it has not exited 30 s later its whole process group is
 * killed, so a hang ends the test with the output it printed rather than a test timeout.
 */
export async function npmStart(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  const child = spawn('npm', ['start', '--silent', '--', ...args], {
    cwd: ROOT,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  const interrupt = setTimeout(() => {
    timedOut = true;
    stderr += `\n[test] no exit after ${timeoutMs} ms: SIGINT\n`;
    signalGroup('SIGINT');
  }, timeoutMs);
  const kill = setTimeout(() => {
    stderr += '\n[test] still running 30 s after SIGINT: SIGKILL to the process group\n';
    signalGroup('SIGKILL');
  }, timeoutMs + 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(interrupt);
  clearTimeout(kill);
  return { code, stdout, stderr, timedOut };
}
