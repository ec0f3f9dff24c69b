import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { LocalDocker } from '../local/docker-env';
import { timed, type Timed } from './process-timing';

/**
 * The docker CLI against the local engine and registry for one bench section, logged in with a
 * config of its own (never ~/.docker), keeping account of what it makes so that it can remove
 * every container, image and registry manifest afterwards and say what, if anything, is left.
 */
export interface DockerSession {
  docker: LocalDocker;
  env: NodeJS.ProcessEnv;
  /** A scratch directory, removed at the end. */
  work: string;
  /** The registry repository this section pushes to. */
  repository: string;
  /** Containers made here are named with this prefix. */
  prefix: string;
  /** Image references made here (tags and pulled digests). */
  images: Set<string>;
  /** Manifests pushed to the registry. */
  digests: Set<string>;
  /** The engine's image ids before the section: anything else at the end is left behind. */
  imagesBefore: Set<string>;
  baseId: string;
  /** Set while the base image is removed on purpose (to pull as a fresh instance does). */
  baseRemoved: boolean;
}

export function dockerIn(s: DockerSession, args: readonly string[], input?: string): Promise<Timed> {
  return timed('docker', args, s.env, input === undefined ? {} : { input });
}

export async function inspectImage(s: DockerSession, format: string, ref: string): Promise<string> {
  return (await dockerIn(s, ['image', 'inspect', '--format', format, ref])).stdout.trim();
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

/** Runs `use` in a fresh session, then cleans up on every path; answers its result and what is left behind. */
export async function withDockerSession<T>(docker: LocalDocker, repository: string, use: (s: DockerSession) => Promise<T>): Promise<{ result: T; leftBehind: string[] }> {
  const work = await mkdtemp(join(tmpdir(), 'runctl-bench-docker-'));
  await mkdir(join(work, 'docker-config'));
  await writeFile(join(work, 'docker-config', 'config.json'), '{}\n');
  const s: DockerSession = {
    docker,
    env: { ...process.env, DOCKER_HOST: docker.dockerHost, DOCKER_CONFIG: join(work, 'docker-config') },
    work,
    repository,
    prefix: `runctl-bench-${process.pid}-`,
    images: new Set(),
    digests: new Set(),
    imagesBefore: new Set(),
    baseId: '',
    baseRemoved: false,
  };
  let result: T;
  try {
    s.imagesBefore = new Set(lines((await dockerIn(s, ['images', '--all', '--quiet', '--no-trunc'])).stdout));
    s.baseId = await inspectImage(s, '{{.Id}}', docker.baseImage);
    await dockerIn(s, ['login', '--username', docker.username, '--password-stdin', docker.registry], docker.password);
    result = await use(s);
  } finally {
    await cleanUp(s);
  }
  return { result, leftBehind: await leftBehind(s) };
}

/** Removes the base image, so the next pull fetches every layer; `restoreBase` (or the cleanup) pulls it back. */
export async function removeBase(s: DockerSession): Promise<void> {
  s.baseRemoved = true;
  await dockerIn(s, ['rmi', s.docker.baseImage]);
}

export async function restoreBase(s: DockerSession): Promise<void> {
  await dockerIn(s, ['pull', '--quiet', s.docker.baseImage]);
  // The registry keeps the imported image's config, so the pulled base is the same image.
  const id = await inspectImage(s, '{{.Id}}', s.docker.baseImage);
  if (id !== s.baseId) throw new Error(`the base image ${s.docker.baseImage} came back as ${id}, not ${s.baseId}`);
  s.baseRemoved = false;
}

function registryAuth(d: LocalDocker): string {
  return `Basic ${Buffer.from(`${d.username}:${d.password}`).toString('base64')}`;
}

/** Best effort on every path: containers, images, the base image, registry manifests, the login, the scratch directory. */
async function cleanUp(s: DockerSession): Promise<void> {
  const quietly = (args: readonly string[]) => dockerIn(s, args).catch(() => undefined);
  const containers = lines((await quietly(['ps', '--all', '--quiet', '--filter', `name=${s.prefix}`]))?.stdout ?? '');
  if (containers.length > 0) await quietly(['rm', '--force', ...containers]);
  for (const ref of s.images) await quietly(['rmi', ref]);
  if (s.baseRemoved) await restoreBase(s).catch((error: unknown) => console.error(`could not restore ${s.docker.baseImage}: ${String(error)}`));
  for (const digest of s.digests) {
    await fetch(`http://${s.docker.registry}/v2/${s.repository}/manifests/${digest}`, {
      method: 'DELETE',
      headers: { authorization: registryAuth(s.docker) },
    }).catch(() => undefined);
  }
  await quietly(['logout', s.docker.registry]);
  await rm(s.work, { recursive: true, force: true });
}

async function leftBehind(s: DockerSession): Promise<string[]> {
  const left: string[] = [];
  const containers = lines((await dockerIn(s, ['ps', '--all', '--format', '{{.Names}}', '--filter', `name=${s.prefix}`])).stdout);
  left.push(...containers.map((name) => `container ${name}`));
  const images = new Set(lines((await dockerIn(s, ['images', '--all', '--quiet', '--no-trunc'])).stdout));
  left.push(...[...images].filter((id) => !s.imagesBefore.has(id)).map((id) => `image ${id}`));
  if (s.baseRemoved) left.push(`the base image ${s.docker.baseImage} is missing`);
  const response = await fetch(`http://${s.docker.registry}/v2/${s.repository}/tags/list`, { headers: { authorization: registryAuth(s.docker) } });
  if (response.status !== 404) {
    const { tags } = z.object({ tags: z.array(z.string()).nullish() }).parse(await response.json());
    left.push(...(tags ?? []).map((tag) => `registry tag ${s.repository}:${tag}`));
  }
  return left;
}
