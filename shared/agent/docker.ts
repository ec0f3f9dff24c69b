/**
 * The container side of training: the `docker run` argv the agent execs, and the ECR login
 * and pull text. Everything is built as argv (one element per argument) so a hostile value,
 * an environment value with spaces, quotes or `$(…)`, stays one argument; `shellJoin` quotes
 * it when the agent needs shell text.
 */
import { shellJoin, shellQuote } from '../domain/shell';

export interface DockerMount {
  /** Host path. */
  source: string;
  /** Path inside the container. */
  target: string;
  readOnly: boolean;
}

export interface DockerRunOptions {
  image: string;
  /** `all` (default), a GPU count, or `none` for a CPU-only run. */
  gpus?: 'all' | 'none' | number;
  /** Container name, so `docker stop`/`docker kill` can address it. */
  name: string;
  /** Data paths, the dataset volume (read-only), checkpoint and output dirs. */
  mounts: readonly DockerMount[];
  /**
   * The RUNCTL_* contract, with a multi-node run's RUNCTL_NODE_RANK, RUNCTL_NUM_NODES,
   * RUNCTL_MASTER_ADDR and RUNCTL_MASTER_PORT (`nodeEnvironment`, node.ts); these win over `userEnv`.
   */
  env: Readonly<Record<string, string>>;
  /** The run spec's `env`. */
  userEnv?: Readonly<Record<string, string>>;
  /**
   * Names of the run's secrets: passed as `-e NAME`, so docker takes each value from its own
   * environment (the agent sets it for the docker CLI alone) and no value is on the command line.
   */
  secretNames?: readonly string[];
  /** The training command: program and arguments. */
  argv: readonly string[];
  /** Signal `docker stop` sends (the spec's checkpoint.stopSignal). */
  stopSignal: string;
  /** Seconds between the stop signal and SIGKILL (the spec's checkpoint.graceSeconds). */
  stopTimeoutSeconds: number;
  workdir?: string;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SIGNAL = /^SIG[A-Z0-9]+$/;
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Docker's `-v` is colon separated and `--mount` comma separated: paths holding either are refused, not mangled. */
const MOUNT_PATH = /^\/[^:,\0\n]*$/;
const IMAGE = /^[a-z0-9][a-z0-9._/:@-]*$/;
const REGISTRY = /^[a-z0-9][a-z0-9.-]*(:\d+)?$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

function refuse(what: string, value: string): never {
  throw new RangeError(`${what} is not usable in a docker command line: ${JSON.stringify(value)}`);
}

/**
 * `docker run --rm --init …`: `--init` makes a tiny init PID 1 that forwards signals, so the
 * SIGTERM of `docker stop` reaches the training process (a script run as PID 1 would ignore
 * it); `--stop-signal`/`--stop-timeout` give it the spec's signal and grace period. Host
 * networking and IPC keep NCCL and the data loaders' shared memory working as outside Docker.
 */
export function dockerRunArgv(options: DockerRunOptions): string[] {
  if (!IMAGE.test(options.image)) refuse('image', options.image);
  if (!CONTAINER_NAME.test(options.name)) refuse('container name', options.name);
  if (!SIGNAL.test(options.stopSignal)) refuse('stop signal', options.stopSignal);
  if (!Number.isInteger(options.stopTimeoutSeconds) || options.stopTimeoutSeconds < 0) {
    refuse('stop timeout', String(options.stopTimeoutSeconds));
  }
  if (options.argv.length === 0) throw new RangeError('the training command (argv) is empty');
  const argv = ['docker', 'run', '--rm', '--init', '--name', options.name];
  const gpus = options.gpus ?? 'all';
  if (gpus !== 'none') {
    if (typeof gpus === 'number' && (!Number.isInteger(gpus) || gpus < 1)) refuse('gpus', String(gpus));
    argv.push('--gpus', String(gpus));
  }
  argv.push('--stop-signal', options.stopSignal, '--stop-timeout', String(options.stopTimeoutSeconds));
  argv.push('--network', 'host', '--ipc', 'host');
  for (const mount of options.mounts) {
    if (!MOUNT_PATH.test(mount.source)) refuse('mount source', mount.source);
    if (!MOUNT_PATH.test(mount.target)) refuse('mount target', mount.target);
    argv.push('-v', `${mount.source}:${mount.target}${mount.readOnly ? ':ro' : ''}`);
  }
  const env = { ...(options.userEnv ?? {}), ...options.env };
  for (const [key, value] of Object.entries(env)) {
    if (!ENV_NAME.test(key)) refuse('environment variable name', key);
    if (value.includes('\0')) refuse(`value of ${key}`, value);
    // KEY=VALUE as one element: docker splits at the first "=", and the value is taken verbatim.
    argv.push('-e', `${key}=${value}`);
  }
  for (const name of [...(options.secretNames ?? [])].sort()) {
    if (!ENV_NAME.test(name)) refuse('secret variable name', name);
    argv.push('-e', name);
  }
  if (options.workdir !== undefined) {
    if (!MOUNT_PATH.test(options.workdir)) refuse('workdir', options.workdir);
    argv.push('-w', options.workdir);
  }
  argv.push(options.image, ...options.argv);
  return argv;
}

/** `docker stop` with the grace period: sends the container's stop signal, SIGKILL after `graceSeconds`. */
export function dockerStopArgv(name: string, graceSeconds: number): string[] {
  if (!CONTAINER_NAME.test(name)) refuse('container name', name);
  return ['docker', 'stop', '--time', String(graceSeconds), name];
}

/** `docker kill --signal`: forwards one signal (e.g. the checkpoint signal) to the container's init. */
export function dockerKillArgv(name: string, signal: string): string[] {
  if (!CONTAINER_NAME.test(name)) refuse('container name', name);
  if (!SIGNAL.test(signal)) refuse('signal', signal);
  return ['docker', 'kill', '--signal', signal, name];
}

/** The registry host of an ECR image URI, or undefined for an image elsewhere (Docker Hub, GHCR). */
export function ecrRegistryOf(image: string): string | undefined {
  const host = image.split('/')[0] ?? '';
  return /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(host) ? host : undefined;
}

/**
 * Logs docker in to an ECR registry. The password is fetched on the instance by the instance
 * role and piped to `--password-stdin`: it never appears in this text, a process list or a log.
 */
export function ecrLoginCommand(registry: string, region: string): string {
  if (!REGISTRY.test(registry)) refuse('registry', registry);
  if (!REGION.test(region)) refuse('region', region);
  return `aws ecr get-login-password --region ${shellQuote(region)} | docker login --username AWS --password-stdin ${shellQuote(registry)}`;
}

/** Logs in (for an ECR image) and pulls the image; bash text for the agent. */
export function pullImageCommand(image: string, region: string): string {
  if (!IMAGE.test(image)) refuse('image', image);
  const registry = ecrRegistryOf(image);
  const lines = ['set -euo pipefail'];
  if (registry !== undefined) lines.push(`${ecrLoginCommand(registry, region)} >/dev/null`);
  lines.push(shellJoin(['docker', 'pull', '--quiet', image]));
  return lines.join('\n');
}

/** Exit codes of the image build command, distinct so the step handler can name the failure. */
export const IMAGE_EXIT = { bundleMissing: 40, dockerfileMissing: 41, buildFailed: 42, pushFailed: 43 } as const;

/** Where a Dockerfile is looked for when the request names none, in order. */
export const DOCKERFILE_CANDIDATES = ['Dockerfile', 'docker/Dockerfile', '.docker/Dockerfile'] as const;

export interface BuildImageOptions {
  /** `s3://<runsBucket>/bundles/<bundleSha>.tar.gz`: the only bundle location the builder accepts. */
  bundleUri: string;
  /** sha256 of the bundle: checked after download. */
  bundleSha: string;
  /** The stack's runs bucket, whose `bundles/` holds the content-addressed uploads. */
  runsBucket: string;
  /** Dockerfile path relative to the bundle root; undefined: the first of DOCKERFILE_CANDIDATES. */
  dockerfile?: string;
  /** `<registry>/<name>` without tag. */
  repositoryUri: string;
  registry: string;
  region: string;
  tag: string;
  /** `--build-arg NAME=VALUE` each (e.g. the BASE_IMAGE a Dockerfile starts `FROM`). */
  buildArgs?: Readonly<Record<string, string>>;
}

/** A build argument's name, as a Dockerfile's ARG takes it. */
export const BUILD_ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Builder instance: fetch and check the code bundle, find the Dockerfile, log in (password
 * fetched on the instance, so `FROM` an image of the same registry works with `--pull`),
 * `docker build`, push, log out, print `{"digest","dockerfile"}`. Build output goes to a file
 * (SSM keeps only 24,000 characters of stdout); its tail is printed on failure. The work
 * directory lives under the instance root (`RUNCTL_INSTANCE_ROOT`, empty on EC2) and is removed
 * on every path, as are the intermediate containers of a failed build (`--force-rm`): only the
 * image is left.
 * The builder runs as root and may push to runctl's repositories, so the only bundle it takes is
 * the content-addressed upload of the runs bucket, and every value in the text is shell-quoted.
 */
export function buildImageCommand(options: BuildImageOptions): string {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.runsBucket)) refuse('runs bucket', options.runsBucket);
  if (!/^[0-9a-f]{64}$/.test(options.bundleSha)) refuse('bundle sha256', options.bundleSha);
  if (options.bundleUri !== `s3://${options.runsBucket}/bundles/${options.bundleSha}.tar.gz`) refuse('bundle', options.bundleUri);
  if (!IMAGE.test(options.repositoryUri)) refuse('repository', options.repositoryUri);
  if (!REGISTRY.test(options.registry)) refuse('registry', options.registry);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(options.tag)) refuse('tag', options.tag);
  const dockerfile = options.dockerfile;
  if (dockerfile !== undefined && (!/^[A-Za-z0-9_.][A-Za-z0-9_./-]*$/.test(dockerfile) || dockerfile.split('/').includes('..'))) {
    refuse('dockerfile path', dockerfile);
  }
  for (const [name, value] of Object.entries(options.buildArgs ?? {})) {
    if (!BUILD_ARG_NAME.test(name)) refuse('build argument name', name);
    if (/[\0\n]/.test(value)) refuse(`build argument ${name}`, value);
  }
  return buildScriptText(options);
}

/**
 * The builder's bash text. Every value that comes from a request is passed through `shellQuote`,
 * messages included, so even a value that slipped past the checks above stays inert text (a test
 * renders hostile values through this function directly and runs the result).
 */
export function buildScriptText(options: BuildImageOptions): string {
  const candidates = options.dockerfile === undefined ? DOCKERFILE_CANDIDATES : [options.dockerfile];
  const image = `${options.repositoryUri}:${options.tag}`;
  const q = shellQuote;
  const buildArgs = Object.entries(options.buildArgs ?? {}).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]);
  return [
    '#!/bin/bash',
    'set -uo pipefail',
    `registry=${q(options.registry)}`,
    'tmp="${RUNCTL_INSTANCE_ROOT:-}/var/tmp"',
    'mkdir -p "$tmp" && work=$(mktemp -d "$tmp/runctl-build.XXXXXX") || { echo "runctl build: cannot make a work directory in $tmp" >&2; exit 1; }',
    'log="$work/build.log"',
    'fail() { local code=$1; shift; echo "runctl build: $*" >&2; tail -n 30 "$log" >&2; docker logout "$registry" >/dev/null 2>&1; rm -rf "$work"; exit "$code"; }',
    'if ! command -v docker >/dev/null 2>&1; then',
    '  { dnf install -y docker || yum install -y docker || apt-get install -y docker.io; } >>"$log" 2>&1',
    'fi',
    // Only an engine that does not answer is started: a builder shares none, a developer's machine may.
    'docker version >/dev/null 2>&1 || systemctl start docker >>"$log" 2>&1 || true',
    `bundle=${q(options.bundleUri)}`,
    `expected=${q(options.bundleSha)}`,
    `aws s3 cp "$bundle" "$work/bundle.tar.gz" --only-show-errors >>"$log" 2>&1 || fail ${IMAGE_EXIT.bundleMissing} "cannot fetch the code bundle $bundle"`,
    `actual=$(sha256sum "$work/bundle.tar.gz" | cut -d " " -f 1)`,
    `[ "$actual" = "$expected" ] || fail ${IMAGE_EXIT.bundleMissing} "the code bundle's sha256 is $actual, expected $expected"`,
    'mkdir -p "$work/src" && tar -xzf "$work/bundle.tar.gz" -C "$work/src" >>"$log" 2>&1 || fail ' +
      `${IMAGE_EXIT.bundleMissing} "the code bundle is not a readable .tar.gz"`,
    'dockerfile=""',
    `for candidate in ${candidates.map(q).join(' ')}; do`,
    '  if [ -f "$work/src/$candidate" ]; then dockerfile=$candidate; break; fi',
    'done',
    `[ -n "$dockerfile" ] || fail ${IMAGE_EXIT.dockerfileMissing} ${q(`no Dockerfile in the code bundle (looked for ${candidates.join(', ')})`)}`,
    `image=${q(image)}`,
    `aws ecr get-login-password --region ${q(options.region)} | docker login --username AWS --password-stdin "$registry" >>"$log" 2>&1 || fail ${IMAGE_EXIT.pushFailed} "docker login to $registry failed"`,
    `${shellJoin(['docker', 'build', '--pull', '--force-rm', ...buildArgs])} -f "$work/src/$dockerfile" -t "$image" "$work/src" >>"$log" 2>&1 || fail ${IMAGE_EXIT.buildFailed} "docker build failed"`,
    `docker push "$image" >>"$log" 2>&1 || fail ${IMAGE_EXIT.pushFailed} "docker push failed"`,
    // The digest the registry answered the push with (RepoDigests), not a local image id.
    `digest=$(docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$image" | grep -F ${q(`${options.repositoryUri}@`)} | head -n 1 | cut -d @ -f 2)`,
    `[ -n "$digest" ] || fail ${IMAGE_EXIT.pushFailed} "the pushed image has no digest"`,
    'docker logout "$registry" >/dev/null 2>&1',
    'rm -rf "$work"',
    'printf \'{"digest":"%s","dockerfile":"%s"}\\n\' "$digest" "$dockerfile"',
    '',
  ].join('\n');
}
