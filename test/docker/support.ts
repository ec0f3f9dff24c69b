import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { packDirectory } from '../../cli/pack';
import type { LocalDocker } from '../../local/docker-env';
import type { LocalBackend } from '../../local/runtime';
import { bundleKey } from '../../shared/usecases/uploads';

const run = promisify(execFile);

/** Packs `files` into a content-addressed bundle in the backend's S3; returns its URI and sha256. */
export async function uploadBundle(backend: LocalBackend, files: Record<string, string>): Promise<{ uri: string; sha: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'runctl-docker-bundle-'));
  try {
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    const packed = await packDirectory(dir);
    const key = bundleKey(packed.sha256);
    await backend.s3.send(new PutObjectCommand({ Bucket: backend.services.bucket, Key: key, Body: await readFile(packed.file) }));
    await rm(dirname(packed.file), { recursive: true, force: true });
    return { uri: `s3://${backend.services.bucket}/${key}`, sha: packed.sha256 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The docker CLI against the test engine; stdout lines. */
export async function dockerLines(docker: LocalDocker, args: string[]): Promise<string[]> {
  const { stdout } = await run('docker', args, { env: { ...process.env, DOCKER_HOST: docker.dockerHost }, timeout: 60_000 });
  return stdout.split('\n').filter((line) => line.trim() !== '');
}

/** Containers (running or not) whose name starts with `prefix`. */
export async function containersNamed(docker: LocalDocker, prefix: string): Promise<string[]> {
  const names = await dockerLines(docker, ['ps', '--all', '--format', '{{.Names}}']);
  return names.filter((name) => name.startsWith(prefix));
}

/** The registry's digest of `repository:reference` (HEAD of the manifest), or undefined. */
export async function registryDigest(docker: LocalDocker, repository: string, reference: string): Promise<string | undefined> {
  const response = await fetch(`http://${docker.registry}/v2/${repository}/manifests/${reference}`, {
    method: 'HEAD',
    headers: {
      authorization: `Basic ${Buffer.from(`${docker.username}:${docker.password}`).toString('base64')}`,
      accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
    },
  });
  if (response.status === 404) return undefined;
  return response.headers.get('docker-content-digest') ?? undefined;
}
