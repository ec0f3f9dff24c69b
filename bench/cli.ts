import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The CLI as a user meets it: start-up time of `runctl --help` and `runctl status RUN` against a
 * `runctl dev` started here (beside `aws --version` and bare `node`, measured in the same run),
 * and how long what a script prints takes to reach `runctl logs -f` and the metrics API.
 */

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'runctl.mjs');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Wall time of a command, median of `runs` fresh processes. */
function timeCommand(command: string, args: string[], runs: number, env: NodeJS.ProcessEnv = process.env): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const started = performance.now();
    const result = spawnSync(command, args, { env, stdio: 'ignore' });
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${String(result.status)}`);
    times.push(performance.now() - started);
  }
  return median(times);
}

export interface CliFigures {
  node: number;
  aws: number | undefined;
  help: number;
  version: number;
  status: number;
  logDelays: number[];
  metricDelays: number[];
}

const SCRIPT = `import json, sys, time
# Prints a line every 0.2 s with the moment it printed it, as a metric too.
for i in range(int(sys.argv[sys.argv.index('--lines') + 1]) if '--lines' in sys.argv else 40):
    print(json.dumps({"seq": i, "printed_ms": time.time() * 1000}), flush=True)
    time.sleep(0.2)
`;

async function startDev(root: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'dev', '--port', '0', '--root', root], {
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /API on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match?.[1] !== undefined) resolveUrl(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`runctl dev exited ${String(code)}: ${out}`)));
  });
  return {
    url,
    stop: () =>
      new Promise<void>((done) => {
        child.once('exit', () => done());
        child.kill('SIGINT');
      }),
  };
}

export async function measureCli(runs = 7): Promise<CliFigures> {
  const awsProbe = spawnSync('aws', ['--version'], { stdio: 'ignore' });
  const node = timeCommand(process.execPath, ['-e', '0'], runs);
  const aws = awsProbe.status === 0 ? timeCommand('aws', ['--version'], runs) : undefined;
  const help = timeCommand(process.execPath, [BIN, '--help'], runs);
  const version = timeCommand(process.execPath, [BIN, '--version'], runs);

  const dir = await mkdtemp(join(tmpdir(), 'runctl-bench-cli-'));
  const project = join(dir, 'project');
  await writeFile(join(dir, 'placeholder'), '');
  await import('node:fs/promises').then((fs) => fs.mkdir(project));
  await writeFile(join(project, 'train.py'), SCRIPT);
  const dev = await startDev(join(dir, 'root'));
  try {
    const env = { ...process.env, RUNCTL_ENDPOINT: dev.url };
    const submitted = spawnSync(process.execPath, [BIN, 'submit', project, '--entrypoint', 'train.py', '--hyperparameters', 'lines=40', '--json'], {
      env,
      encoding: 'utf8',
    });
    if (submitted.status !== 0) throw new Error(`submit failed: ${submitted.stderr}`);
    const runId = String(JSON.parse(submitted.stdout).runId);
    const status = timeCommand(process.execPath, [BIN, 'status', runId], runs, env);

    // Follow the log as a user does; each line says when the script printed it.
    const logDelays: number[] = [];
    const follow = spawn(process.execPath, [BIN, 'logs', runId, '-f'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let pending = '';
    follow.stdout.on('data', (chunk: Buffer) => {
      const now = Date.now();
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const match = /"printed_ms": ([0-9.]+)/.exec(line);
        if (match?.[1] !== undefined) logDelays.push(now - Number(match[1]));
      }
    });
    // The metrics API polled once a second, as `status --follow` does.
    const metricDelays: number[] = [];
    let token: string | undefined;
    const followed = new Promise<void>((done) => follow.on('exit', () => done()));
    let ended = false;
    void followed.then(() => (ended = true));
    while (!ended) {
      const query = new URLSearchParams({ limit: '5000', ...(token === undefined ? {} : { nextToken: token }) });
      const response = await fetch(`${dev.url}/runs/${runId}/metrics?${query.toString()}`);
      const page = (await response.json()) as { metrics: Array<Record<string, unknown>>; resumeToken: string };
      const now = Date.now();
      for (const row of page.metrics) if (typeof row.printed_ms === 'number') metricDelays.push(now - row.printed_ms);
      token = page.resumeToken;
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { node, aws, help, version, status, logDelays, metricDelays };
  } finally {
    await dev.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
