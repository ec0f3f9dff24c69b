import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import { runCli } from '../cli/run-cli';

/**
 * Every command line in README.md and docs/*.md, as a user copies it. Fenced blocks marked
 * `<!-- docs-test: local -->` target the local backend: their lines run in order against a
 * `runctl dev` this test starts (`RUN` is the run id the latest `submit` printed), each must
 * exit 0. Every other `runctl` line (they name AWS resources or example run ids) must pass the
 * CLI's argument parser.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const DEV_DEFAULT_URL = 'http://127.0.0.1:4567';
/** npm commands are what CI itself runs (install, tests, npm start's own end-to-end test). */
const NPM_COMMAND = /^npm (install|ci|test|start)\b/;

interface DocCommand {
  where: string;
  line: string;
  local: boolean;
}

/** Shell words, with '…' and "…" quoting; a trailing `&` is dropped (backgrounding). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  const pattern = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (const match of line.matchAll(pattern)) words.push(match[1] ?? match[2] ?? match[3] ?? '');
  if (words.at(-1) === '&') words.pop();
  return words;
}

async function documentedCommands(): Promise<DocCommand[]> {
  const files = ['README.md', ...(await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const commands: DocCommand[] = [];
  for (const file of files) {
    const lines = (await readFile(join(ROOT, file), 'utf8')).split('\n');
    let block: string[] | undefined;
    let inFence = false;
    let local = false;
    let start = 0;
    lines.forEach((text, index) => {
      if (/^```/.test(text)) {
        inFence = !inFence;
        if (inFence) {
          start = index + 2;
          local = lines[index - 1]?.trim() === '<!-- docs-test: local -->';
          // Shell blocks only: data and code blocks hold no command lines.
          block = /^```(json|yaml|yml|ts|typescript|python|py|dockerfile)\b/.test(text) ? undefined : [];
          return;
        }
        if (block !== undefined) commands.push(...commandsOf(block, `${file}:${start}`, local));
        block = undefined;
        return;
      }
      block?.push(text);
    });
  }
  return commands;
}

/** The command lines of one block: with `$ ` prompts only those (the rest is output). */
function commandsOf(block: string[], where: string, local: boolean): DocCommand[] {
  const prompted = block.some((l) => l.startsWith('$ '));
  const joined: string[] = [];
  for (let i = 0; i < block.length; i += 1) {
    let text = block[i] ?? '';
    if (prompted && !text.startsWith('$ ')) continue;
    if (/^\s/.test(text)) continue; // an indented line is output or a diagram, not a command
    while (text.endsWith('\\') && i + 1 < block.length) text = `${text.slice(0, -1)} ${(block[++i] ?? '').trim()}`;
    joined.push(text.replace(/^\$ /, '').replace(/\s+#\s.*$/, '').trim());
  }
  const isRunctl = (l: string) => /^(npx )?runctl( |$)/.test(l);
  return joined.filter((l) => l !== '' && (local || isRunctl(l))).map((line) => ({ where, line, local }));
}

const runctlArgs = (line: string) => shellWords(line).slice(line.startsWith('npx ') ? 2 : 1);

describe('the commands in README.md and docs/', () => {
  let commands: DocCommand[];
  let dev: ChildProcess | undefined;
  let devUrl = '';
  let dir = '';

  beforeAll(async () => {
    commands = await documentedCommands();
    dir = await mkdtemp(join(tmpdir(), 'runctl-docs-'));
  });
  afterAll(async () => {
    if (dev !== undefined && dev.exitCode === null) {
      const exited = new Promise((done) => dev?.once('exit', done));
      dev.kill('SIGINT');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the documented commands, local and AWS ones', () => {
    expect(commands.filter((c) => c.local).map((c) => c.line)).toContain('npx runctl dev &');
    expect(commands.filter((c) => !c.local).length).toBeGreaterThan(15);
  });

  it('every runctl command line passes the argument parser', async () => {
    for (const command of commands.filter((c) => /^(npx )?runctl/.test(c.line))) {
      const args = runctlArgs(command.line).map((a) => (a === 'RUN' ? 'r-0000000000000000' : a));
      const code = await main(args, { ...process.env, RUNCTL_ENDPOINT: DEV_DEFAULT_URL }, { parseOnly: true }).catch((error: unknown) => {
        throw new Error(`${command.where}: ${command.line}\n${error instanceof Error ? error.message : String(error)}`);
      });
      expect(code, `${command.where}: ${command.line}`).toBe(0);
    }
  });

  it('the local blocks run in order against runctl dev, each command exiting 0', async () => {
    const env: Record<string, string> = { HOME: dir, RUNCTL_CONFIG: join(dir, 'none.json'), POWERTOOLS_LOG_LEVEL: 'SILENT' };
    let runId = '';
    const api = async (path: string) => (await fetch(`${devUrl}${path}`)).json() as Promise<{ status?: string; attempts?: Array<{ instanceId?: string; endedAt?: string; endReason?: string }> }>;
    const waitFor = async (what: string, done: () => Promise<boolean>, seconds: number) => {
      for (const until = Date.now() + seconds * 1000; Date.now() < until; await new Promise((r) => setTimeout(r, 500))) if (await done()) return;
      throw new Error(`timed out waiting for ${what}`);
    };

    for (const { where, line } of commands.filter((c) => c.local)) {
      const label = `${where}: ${line}`;
      if (NPM_COMMAND.test(line)) continue;
      const exported = /^export RUNCTL_ENDPOINT=(\S+)$/.exec(line);
      if (exported !== null) {
        expect(exported[1], label).toBe(DEV_DEFAULT_URL);
        env.RUNCTL_ENDPOINT = devUrl;
        continue;
      }
      if (!/^npx runctl /.test(line)) throw new Error(`${label}: the documentation test does not know how to run this line`);
      const args = runctlArgs(line);
      if (args[0] === 'dev') {
        // The documented `runctl dev`, on a free port and a temporary root instead of 4567 and .runctl.
        dev = spawn(process.execPath, [join(ROOT, 'bin/runctl.mjs'), ...args, '--port', '0', '--root', join(dir, 'root')], {
          cwd: ROOT,
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        devUrl = await new Promise<string>((found, failed) => {
          let out = '';
          dev?.stdout?.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            const url = /API on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
            if (url !== undefined) found(url);
          });
          dev?.once('exit', (code) => failed(new Error(`${label} exited ${String(code)}: ${out}`)));
        });
        continue;
      }
      if (args[0] === 'local' && args[1] === 'interrupt') {
        // "once it is TRAINING", as the line says — and has printed an epoch (the script checkpoints
        // each epoch before printing it), so the resume below is from a checkpoint. The live
        // metrics show that at once, where an uploaded checkpoint waits for the sync interval.
        await waitFor(`${runId} to train`, async () => {
          const run = await api(`/runs/${runId}`);
          const page = (await (await fetch(`${devUrl}/runs/${runId}/metrics`)).json()) as { metrics?: Array<{ epoch?: unknown }> };
          const epochs = (page.metrics ?? []).filter((row) => typeof row.epoch === 'number');
          return run.status === 'TRAINING' && run.attempts?.at(-1)?.endedAt === undefined && epochs.length > 0;
        }, 240);
      }
      const result = await runCli(args.map((a) => (a === 'RUN' ? runId : a)), env, ROOT);
      expect(result.code, `${label}\n${result.stdout}\n${result.stderr}`).toBe(0);
      if (args[0] === 'submit') runId = /^(r-[0-9a-f]+)$/m.exec(result.stdout)?.[1] ?? '';
      if (args[0] === 'submit') expect(runId, label).not.toBe('');
      if (args[0] === 'logs') {
        // What the README promises of this run: the interruption, its checkpoint, the resume.
        expect(result.stderr).toContain('--- attempt 2 ---');
        expect(result.stdout).toMatch(/training exited with code \d+ after SIGTERM/);
        // A loaded machine may reclaim the instance before the agent reports its checkpoint: the
        // attempt then ends LOST_DURING_CHECKPOINT, and the status says so instead.
        if ((await api(`/runs/${runId}`)).attempts?.[0]?.endReason === 'SPOT_INTERRUPTED') {
          expect(result.stdout).toMatch(/checkpoint \d{4}-\d{6} is in S3 and is the one the next attempt resumes from/);
        }
      }
      if (args[0] === 'status') {
        expect(result.stdout).toMatch(
          /Attempt 2 resumed from 0001-\d{6}: the checkpoint attempt 1 uploaded and reported|Attempt 2 (resumed from \S+: the newest complete one: attempt 1's instance was reclaimed|started from scratch)/,
        );
      }
    }
    // The cancelled run releases its instance before runctl dev stops.
    if (runId !== '') await waitFor(`${runId} to end`, async () => (await api(`/runs/${runId}`)).status === 'CANCELLED', 120);
  }, 600_000);
});
