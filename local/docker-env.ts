import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

/**
 * The Docker engine and registry the local backend builds, pushes and trains with: the ones
 * `scripts/docker-test-env.sh start` runs and describes in `.runctl/docker/env.json` (or the file
 * RUNCTL_DOCKER_ENV names). The registry stands in for ECR; its password is the one
 * `aws ecr get-login-password` answers on a local instance (local/ecr.ts).
 */

const run = promisify(execFile);

/** What to do when no engine answers, in the words every refusal uses. */
export const START_DOCKER_HINT =
  'start one with `sudo bash scripts/docker-test-env.sh start` (it needs `apt-get install -y docker.io docker-registry mmdebstrap apache2-utils`)';

const DockerEnvSchema = z.object({
  /** `unix:///…/docker.sock` of the engine. */
  dockerHost: z.string().regex(/^unix:\/\/\/\S+$/, 'a unix:// socket'),
  /** `127.0.0.1:<port>` of the registry. */
  registry: z.string().regex(/^127\.0\.0\.1:\d{1,5}$/, 'a loopback host:port'),
  username: z.string().min(1),
  passwordFile: z.string().min(1),
  /** The base image in the registry, the BASE_IMAGE of every local build. */
  baseImage: z.string().min(1),
});

export interface LocalDocker {
  dockerHost: string;
  registry: string;
  username: string;
  password: string;
  baseImage: string;
}

export type DockerProbe = { available: true; docker: LocalDocker } | { available: false; reason: string };

/** The env.json the start script writes: RUNCTL_DOCKER_ENV, else `<cwd>/.runctl/docker/env.json`. */
export function dockerEnvFile(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.RUNCTL_DOCKER_ENV ?? '.runctl/docker/env.json');
}

/** Finds the local engine and registry and checks both answer; says why (and what to start) when not. */
export async function probeLocalDocker(file: string = dockerEnvFile()): Promise<DockerProbe> {
  let parsed: z.infer<typeof DockerEnvSchema>;
  let password: string;
  try {
    parsed = DockerEnvSchema.parse(JSON.parse(await readFile(file, 'utf8')));
    password = (await readFile(parsed.passwordFile, 'utf8')).trim();
  } catch (error) {
    const why = error instanceof Error && 'code' in error && error.code === 'ENOENT' ? `${file} does not exist` : `${file} is unreadable`;
    return { available: false, reason: `No Docker engine is set up for runctl (${why}): ${START_DOCKER_HINT}` };
  }
  const docker: LocalDocker = { ...parsed, password };
  try {
    await run('docker', ['version', '--format', '{{.Server.Version}}'], { env: dockerEnv(docker), timeout: 15_000 });
  } catch {
    return { available: false, reason: `The Docker engine at ${docker.dockerHost} does not answer: ${START_DOCKER_HINT}` };
  }
  try {
    // A registry that wants a login answers /v2/ with 401.
    const response = await fetch(`http://${docker.registry}/v2/`, { signal: AbortSignal.timeout(5000) });
    if (response.status !== 401 && response.status !== 200) throw new Error(String(response.status));
  } catch {
    return { available: false, reason: `The registry at ${docker.registry} does not answer: ${START_DOCKER_HINT}` };
  }
  return { available: true, docker };
}

/** The process environment that points the docker CLI at the local engine (and nowhere else). */
export function dockerEnv(docker: Pick<LocalDocker, 'dockerHost'>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, DOCKER_HOST: docker.dockerHost };
}

/** Runs the docker CLI against the local engine; resolves with stdout. */
export async function docker(local: Pick<LocalDocker, 'dockerHost'>, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await run('docker', [...args], { env: dockerEnv(local), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}
