import { existsSync } from 'node:fs';
import { appendFile, copyFile, cp, mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { dockerEnvFile, probeLocalDocker } from '../local/docker-env';
import { dockerKillArgv, dockerRunArgv } from '../shared/agent/docker';
import { dockerIn, inspectImage, removeBase, restoreBase, withDockerSession, type DockerSession } from './docker-session';
import { monotonicNs, summarize, watch, type Sample, type Timed } from './process-timing';

/**
 * What the container path adds on this machine (docs/performance.md): the example's image built
 * with its base already present, pushed to the local registry and pulled by digest, a container
 * started to the script's first line, and the stop signal delivered by `docker kill --signal`
 * through `--init`, each beside what the host path does instead, measured the same way. Needs
 * the engine and registry of `scripts/docker-test-env.sh start`; leaves no container, image or
 * registry tag behind.
 */

const ROOT = resolve(import.meta.dirname, '..');
const EXAMPLE = join(ROOT, 'examples', 'linear');
const STOP_SCRIPT = join(ROOT, 'bench', 'containers-script', 'stop_signal.py');
/** Debian's python3 is the base image's interpreter: both paths start the same program (not a pyenv shim). */
const HOST_PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const REPOSITORY = 'runctl/bench-containers';
/** Builds, pushes and pulls take seconds each on vfs; starts and signals are quicker and noisier. */
export const SLOW_REPEATS = 3;
export const FAST_REPEATS = 7;
/** A tar archive with no entries: two zero blocks. */
const EMPTY_TAR = '\0'.repeat(1024);

export interface ContainerRow {
  step: string;
  docker: Sample;
  /** The host path's equivalent, measured the same way. */
  host?: Sample;
  /** What the host path does instead, where it has no such step. */
  hostNote?: string;
  /** What the figure depends on: steps run or cached, layers moved. */
  note?: string;
}

export interface ContainerFigures {
  available: true;
  engine: string;
  client: string;
  storageDriver: string;
  baseImageMiB: number;
  imageMiB: number;
  /** One-minute load average when the section started and ended: other work on the machine shows here. */
  load: { before: number; after: number };
  rows: ContainerRow[];
  /** Containers, images or registry tags this section made and could not remove; empty when clean. */
  leftBehind: string[];
}

export type ContainersOutcome = ContainerFigures | { available: false; reason: string };

function count(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}

/** The layer steps (RUN, COPY, ADD) the legacy builder made anew and took from its cache, read from its output. */
function buildSteps(output: string): string {
  const cached = count(output, /---> Using cache/g);
  return `${count(output, /^Step \d+\/\d+ : (RUN|COPY|ADD) /gm) - cached} layer step(s) run, ${cached} cached`;
}

function image(s: DockerSession, tag: string): string {
  return `${s.docker.registry}/${s.repository}:${tag}`;
}

async function build(s: DockerSession, context: string, tag: string, extra: readonly string[] = []): Promise<Timed> {
  s.images.add(image(s, tag));
  // The builder's command (buildImageCommand): --pull checks the base in the registry, which is present here.
  return dockerIn(s, ['build', '--pull', '--force-rm', ...extra, '--build-arg', `BASE_IMAGE=${s.docker.baseImage}`, '-f', join(context, 'Dockerfile'), '-t', image(s, tag), context]);
}

async function repeat(times: number, measure: (i: number) => Promise<number>): Promise<Sample> {
  const values: number[] = [];
  for (let i = 0; i < times; i += 1) values.push(await measure(i));
  return summarize(values);
}

async function measureBuilds(s: DockerSession): Promise<{ rows: ContainerRow[]; built: string[] }> {
  const context = join(s.work, 'linear');
  await cp(EXAMPLE, context, { recursive: true });
  const copying = join(s.work, 'linear-copy');
  await cp(EXAMPLE, copying, { recursive: true });
  await appendFile(join(copying, 'Dockerfile'), 'COPY . /code\n');
  const hostNote = 'none: the bundle runs as unpacked';
  const notes: string[] = ['', '', ''];
  const built: string[] = [];

  const cold = await repeat(SLOW_REPEATS, async (i) => {
    const result = await build(s, context, `cold-${i}`, ['--no-cache']);
    built.push(image(s, `cold-${i}`));
    notes[0] = buildSteps(result.stdout);
    return result.ms;
  });
  const changed = await repeat(SLOW_REPEATS, async (i) => {
    await appendFile(join(context, 'train.py'), `# changed ${i}\n`);
    const result = await build(s, context, `code-${i}`);
    notes[1] = buildSteps(result.stdout);
    return result.ms;
  });
  await build(s, copying, 'copy-warm');
  const copied = await repeat(SLOW_REPEATS, async (i) => {
    await appendFile(join(copying, 'train.py'), `# changed ${i}\n`);
    const result = await build(s, copying, `copy-${i}`);
    notes[2] = buildSteps(result.stdout);
    return result.ms;
  });
  return {
    built,
    rows: [
      { step: 'build examples/linear, base present, --no-cache', docker: cold, hostNote, note: notes[0] },
      { step: 'rebuild after train.py changed (code is mounted)', docker: changed, hostNote, note: notes[1] },
      { step: 'the same, Dockerfile ending `COPY . /code`', docker: copied, hostNote, note: notes[2] },
    ],
  };
}

/** Pushes each built image; answers the push row and the registry digest of each. */
async function measurePush(s: DockerSession, built: readonly string[]): Promise<{ row: ContainerRow; digests: string[] }> {
  const digests: string[] = [];
  let note = '';
  const sample = await repeat(built.length, async (i) => {
    const ref = built[i] ?? '';
    const result = await dockerIn(s, ['push', ref]);
    note = `${count(result.stdout, /: Pushed/g)} layer(s) sent, ${count(result.stdout, /: Layer already exists/g)} already there`;
    const repoDigests = await dockerIn(s, ['image', 'inspect', '--format', '{{range .RepoDigests}}{{println .}}{{end}}', ref]);
    const digest = repoDigests.stdout.split('\n').find((line) => line.startsWith(`${s.docker.registry}/${s.repository}@`))?.split('@')[1];
    if (digest === undefined) throw new Error(`the pushed image ${ref} has no registry digest`);
    digests.push(digest);
    s.digests.add(digest);
    return result.ms;
  });
  return { digests, row: { step: 'push to the registry', docker: sample, hostNote: 'none: the bundle goes to S3 on both paths', note } };
}

/** Pulls each digest and removes it again; `step` says what was present before. */
async function measurePull(s: DockerSession, digests: readonly string[], step: string): Promise<ContainerRow> {
  let note = '';
  const sample = await repeat(digests.length, async (i) => {
    const ref = `${s.docker.registry}/${s.repository}@${digests[i] ?? ''}`;
    s.images.add(ref);
    const result = await dockerIn(s, ['pull', ref]);
    note = `${count(result.stdout, /: Pull complete/g)} layer(s) fetched, ${count(result.stdout, /: Already exists/g)} present`;
    await dockerIn(s, ['rmi', ref]);
    return result.ms;
  });
  return { step, docker: sample, hostNote: 'none: the bundle is fetched on both paths', note };
}

/** The agent's `docker run` (dockerRunArgv): name, stop signal, host network and IPC, the code, checkpoint and output mounts, RUNCTL_* env. */
async function agentRunArgv(s: DockerSession, ref: string, name: string, argv: readonly string[]): Promise<string[]> {
  const dirs = ['code', 'checkpoints', 'output'].map((d) => join(s.work, 'instance', d));
  for (const dir of dirs) await mkdir(dir, { recursive: true });
  const [code = '', checkpoints = '', output = ''] = dirs;
  await copyFile(STOP_SCRIPT, join(code, 'stop_signal.py'));
  return dockerRunArgv({
    image: ref,
    gpus: 'none',
    name,
    mounts: dirs.map((dir) => ({ source: dir, target: dir, readOnly: false })),
    env: { RUNCTL_RUN_ID: 'bench', RUNCTL_ATTEMPT: '1', RUNCTL_CHECKPOINT_DIR: checkpoints, RUNCTL_RESUME_FROM: '', RUNCTL_OUTPUT_DIR: output },
    argv,
    stopSignal: 'SIGTERM',
    stopTimeoutSeconds: 90,
    workdir: code,
  }).slice(1);
}

/** Spawn → first line and spawn → exit of a command that prints `1`, in ms. */
async function firstLine(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ line: number; exit: number }> {
  const run = watch(command, args, env);
  const line = await run.line(/^1$/);
  const exit = await run.exited;
  if (exit.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${String(exit.code)}`);
  return { line: line.at - run.startedAt, exit: exit.at - run.startedAt };
}

async function measureStart(s: DockerSession, ref: string): Promise<ContainerRow[]> {
  const print = ['python3', '-c', 'print(1)'];
  const create = (imageRef: string, what: string) =>
    repeat(FAST_REPEATS, async (i) => {
      const name = `${s.prefix}create-${what}-${i}`;
      const created = await dockerIn(s, ['create', '--name', name, imageRef, 'true']);
      await dockerIn(s, ['rm', name]);
      return created.ms;
    });
  // An image without files: its create is the engine's own work, the rest of a create is copying files.
  const empty = image(s, 'empty');
  s.images.add(empty);
  await dockerIn(s, ['import', '-', empty], EMPTY_TAR);
  const createEmpty = await create(empty, 'empty');
  const createExample = await create(ref, 'example');
  const minimal = await repeat(FAST_REPEATS, async () => (await firstLine('docker', ['run', '--rm', '--init', '--network', 'host', ref, ...print], s.env)).line);
  const agentExits: number[] = [];
  const agent = await repeat(FAST_REPEATS, async (i) => {
    const timing = await firstLine('docker', await agentRunArgv(s, ref, `${s.prefix}start-${i}`, print), s.env);
    agentExits.push(timing.exit);
    return timing.line;
  });
  const hostExits: number[] = [];
  const host = await repeat(FAST_REPEATS, async () => {
    const timing = await firstLine(HOST_PYTHON, ['-c', 'print(1)'], process.env);
    hostExits.push(timing.exit);
    return timing.line;
  });
  return [
    { step: 'docker create, the example image', docker: createExample, hostNote: 'none' },
    { step: 'docker create, an image with no files', docker: createEmpty, hostNote: 'none' },
    { step: "start → first line, `docker run --rm --init --network host`", docker: minimal, host },
    { step: "start → first line, the agent's docker run argv", docker: agent, host },
    { step: "start → exited and removed, the agent's argv", docker: summarize(agentExits), host: summarize(hostExits) },
  ];
}

/** Stop signal sent → the script's handler ran, in ms; `send` sends it once the handler is installed. */
async function signalDelivery(command: string, args: readonly string[], env: NodeJS.ProcessEnv, detached: boolean, send: (pid: number) => Promise<unknown>): Promise<number> {
  const run = watch(command, args, env, { detached });
  await run.line(/^ready$/);
  const sent = monotonicNs();
  const [term] = await Promise.all([run.line(/^term \d+$/, 60_000), send(run.child.pid ?? 0)]);
  const exit = await run.exited;
  if (exit.code !== 0) throw new Error(`the stop-signal script exited ${String(exit.code)}`);
  return Number(BigInt(term.text.slice('term '.length)) - sent) / 1e6;
}

async function measureStopSignal(s: DockerSession, ref: string): Promise<ContainerRow[]> {
  const kills: number[] = [];
  const inContainer = await repeat(FAST_REPEATS, async (i) => {
    const name = `${s.prefix}signal-${i}`;
    const argv = await agentRunArgv(s, ref, name, ['python3', 'stop_signal.py']);
    return signalDelivery('docker', argv, s.env, false, async () => {
      // As the agent does (dockerKillArgv): the CLI asks the engine, the engine signals the init, the init the script.
      kills.push((await dockerIn(s, dockerKillArgv(name, 'SIGTERM').slice(1))).ms);
    });
  });
  const onHost = await repeat(FAST_REPEATS, () =>
    // The agent's host path: the script leads its own process group, and `kill -TERM -- -PGID` is a bash builtin.
    signalDelivery(HOST_PYTHON, [STOP_SCRIPT], process.env, true, async (pid) => process.kill(-pid, 'SIGTERM')),
  );
  return [
    { step: 'SIGTERM sent → handler ran (docker kill via --init)', docker: inContainer, host: onHost },
    { step: 'docker kill --signal SIGTERM returns', docker: summarize(kills), hostNote: 'none: kill is a builtin' },
  ];
}

async function measureAll(s: DockerSession): Promise<Omit<ContainerFigures, 'leftBehind'>> {
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const [engine = '', driver = ''] = (await dockerIn(s, ['info', '--format', '{{.ServerVersion}} {{.Driver}}'])).stdout.trim().split(' ');
  const client = (await dockerIn(s, ['version', '--format', '{{.Client.Version}}'])).stdout.trim();
  const builds = await measureBuilds(s);
  const push = await measurePush(s, builds.built);
  const ref = builds.built[0] ?? '';
  const imageMiB = Number(await inspectImage(s, '{{.Size}}', ref)) / 2 ** 20;
  const baseImageMiB = Number(await inspectImage(s, '{{.Size}}', s.docker.baseImage)) / 2 ** 20;
  const start = await measureStart(s, ref);
  const stop = await measureStopSignal(s, ref);

  await dockerIn(s, ['rmi', ...s.images]);
  const warmPull = await measurePull(s, push.digests, 'pull by digest, base present');
  await removeBase(s);
  const coldPull = await measurePull(s, push.digests, 'pull by digest, nothing present');
  await restoreBase(s);
  return {
    available: true,
    engine,
    client,
    storageDriver: driver,
    baseImageMiB,
    imageMiB,
    load: { before: loadBefore, after: loadavg()[0] ?? Number.NaN },
    rows: [...builds.rows, push.row, warmPull, coldPull, ...start, ...stop],
  };
}

/** The env.json of the checkout, unless RUNCTL_DOCKER_ENV names another. */
function envFile(): string {
  return process.env.RUNCTL_DOCKER_ENV === undefined ? join(ROOT, '.runctl', 'docker', 'env.json') : dockerEnvFile();
}

export async function measureContainers(): Promise<ContainersOutcome> {
  const probe = await probeLocalDocker(envFile());
  if (!probe.available) return { available: false, reason: probe.reason };
  const { result, leftBehind } = await withDockerSession(probe.docker, REPOSITORY, measureAll);
  return { ...result, leftBehind };
}
