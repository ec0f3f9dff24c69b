import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LocalDocker } from './docker-env';

/**
 * ECR's API in front of the local registry, so the real ECR adapter (shared/adapters/ecr-images.ts)
 * and the AWS CLI on local instances (`aws ecr get-login-password`, through AWS_ENDPOINT_URL_ECR)
 * run unchanged. It speaks the awsJson1.1 protocol for the calls runctl makes:
 *
 * - CreateRepository, DescribeRepositories: a repository exists once created here or once the
 *   registry has a tag in it (distribution creates repositories on push);
 * - PutImageTagMutability: kept and returned; the registry itself does not refuse a pushed tag
 *   again, so locally the tag check of RecordImage (shared/usecases/image-build.ts) is what holds;
 * - PutLifecyclePolicy: kept and returned, not enforced (the local registry never expires images);
 * - DescribeImages by tag: the digest the registry answers for the tag's manifest;
 * - GetAuthorizationToken: `AWS:<password>` of the registry's htpasswd user, as ECR's token is.
 *
 * Requests are not signature-checked: the local backend has no IAM.
 */

const TARGET_PREFIX = 'AmazonEC2ContainerRegistry_V20150921.';
const ACCOUNT = '000000000000';
/** The manifest types a registry may hold for a pushed image; Docker-Content-Digest is that manifest's. */
const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');
const REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

function tagMutability(value: unknown): string {
  if (value === undefined) return 'MUTABLE';
  if (value === 'MUTABLE' || value === 'IMMUTABLE') return value;
  throw new EcrError('InvalidParameterException', `imageTagMutability must be MUTABLE or IMMUTABLE, got ${String(value)}`);
}

class EcrError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export class LocalEcr {
  private server: Server | undefined;
  private readonly repositories = new Map<string, { createdAt: number; lifecyclePolicyText?: string; imageTagMutability?: string }>();

  constructor(private readonly docker: Pick<LocalDocker, 'registry' | 'username' | 'password'>) {}

  /** Listens on a loopback port; resolves with the endpoint (AWS_ENDPOINT_URL_ECR). */
  async start(): Promise<string> {
    const server = createServer((request, response) => {
      this.serve(request, response).catch((error: unknown) => {
        respond(response, 500, { __type: 'ServerException', message: error instanceof Error ? error.message : String(error) });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const target = String(request.headers['x-amz-target'] ?? '');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      respond(response, 400, { __type: 'InvalidParameterException', message: 'The request body is not JSON' });
      return;
    }
    try {
      respond(response, 200, await this.call(target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : target, body));
    } catch (error) {
      if (!(error instanceof EcrError)) throw error;
      respond(response, 400, { __type: error.type, message: error.message });
    }
  }

  private async call(operation: string, body: Record<string, unknown>): Promise<unknown> {
    switch (operation) {
      case 'CreateRepository': {
        const name = repositoryName(body.repositoryName);
        if (this.repositories.has(name) || (await this.tags(name)) !== undefined) {
          throw new EcrError('RepositoryAlreadyExistsException', `The repository with name '${name}' already exists in the registry with id '${ACCOUNT}'`);
        }
        this.repositories.set(name, { createdAt: Date.now() / 1000, imageTagMutability: tagMutability(body.imageTagMutability) });
        return { repository: this.describe(name) };
      }
      case 'DescribeRepositories': {
        const names = Array.isArray(body.repositoryNames) ? body.repositoryNames.map(repositoryName) : [...this.repositories.keys()];
        for (const name of names) await this.requireRepository(name);
        return { repositories: names.map((name) => this.describe(name)) };
      }
      case 'PutLifecyclePolicy': {
        const name = repositoryName(body.repositoryName);
        await this.requireRepository(name);
        const text = typeof body.lifecyclePolicyText === 'string' ? body.lifecyclePolicyText : '';
        const entry = this.repositories.get(name) ?? { createdAt: Date.now() / 1000 };
        this.repositories.set(name, { ...entry, lifecyclePolicyText: text });
        return { registryId: ACCOUNT, repositoryName: name, lifecyclePolicyText: text };
      }
      case 'PutImageTagMutability': {
        const name = repositoryName(body.repositoryName);
        await this.requireRepository(name);
        const mutability = tagMutability(body.imageTagMutability);
        const entry = this.repositories.get(name) ?? { createdAt: Date.now() / 1000 };
        this.repositories.set(name, { ...entry, imageTagMutability: mutability });
        return { registryId: ACCOUNT, repositoryName: name, imageTagMutability: mutability };
      }
      case 'DescribeImages': {
        const name = repositoryName(body.repositoryName);
        await this.requireRepository(name);
        const ids = Array.isArray(body.imageIds) ? (body.imageIds as Array<{ imageTag?: unknown }>) : [];
        const details = [];
        for (const id of ids) {
          if (typeof id.imageTag !== 'string') throw new EcrError('InvalidParameterException', 'Only imageTag lookups are served locally');
          const digest = await this.manifestDigest(name, id.imageTag);
          if (digest === undefined) {
            throw new EcrError('ImageNotFoundException', `The image with imageId {imageTag:'${id.imageTag}'} does not exist within the repository with name '${name}'`);
          }
          details.push({ registryId: ACCOUNT, repositoryName: name, imageDigest: digest, imageTags: [id.imageTag] });
        }
        return { imageDetails: details };
      }
      case 'GetAuthorizationToken':
        return {
          authorizationData: [
            {
              authorizationToken: Buffer.from(`${this.docker.username}:${this.docker.password}`).toString('base64'),
              // ECR's tokens last 12 hours.
              expiresAt: Math.floor(Date.now() / 1000) + 12 * 3600,
              proxyEndpoint: `http://${this.docker.registry}`,
            },
          ],
        };
      default:
        throw new EcrError('UnknownOperationException', `${operation} is not served by the local ECR`);
    }
  }

  private describe(name: string) {
    return {
      repositoryArn: `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${name}`,
      registryId: ACCOUNT,
      repositoryName: name,
      repositoryUri: `${this.docker.registry}/${name}`,
      createdAt: this.repositories.get(name)?.createdAt ?? Date.now() / 1000,
      imageTagMutability: this.repositories.get(name)?.imageTagMutability ?? 'MUTABLE',
    };
  }

  private async requireRepository(name: string): Promise<void> {
    if (this.repositories.has(name) || (await this.tags(name)) !== undefined) return;
    throw new EcrError('RepositoryNotFoundException', `The repository with name '${name}' does not exist in the registry with id '${ACCOUNT}'`);
  }

  private authorization(): string {
    return `Basic ${Buffer.from(`${this.docker.username}:${this.docker.password}`).toString('base64')}`;
  }

  /** The tags of a repository in the registry, or undefined when it has none. */
  private async tags(name: string): Promise<string[] | undefined> {
    const response = await fetch(`http://${this.docker.registry}/v2/${name}/tags/list`, { headers: { authorization: this.authorization() } });
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`registry ${this.docker.registry} answered ${response.status} listing ${name}`);
    const listed = (await response.json()) as { tags?: string[] | null };
    return listed.tags === null || listed.tags === undefined || listed.tags.length === 0 ? undefined : listed.tags;
  }

  /** The registry's digest of a tag's manifest (what `docker push` printed), or undefined. */
  async manifestDigest(name: string, reference: string): Promise<string | undefined> {
    const response = await fetch(`http://${this.docker.registry}/v2/${name}/manifests/${encodeURIComponent(reference)}`, {
      method: 'HEAD',
      headers: { authorization: this.authorization(), accept: MANIFEST_TYPES },
    });
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`registry ${this.docker.registry} answered ${response.status} for ${name}:${reference}`);
    return response.headers.get('docker-content-digest') ?? undefined;
  }
}

function repositoryName(value: unknown): string {
  if (typeof value !== 'string' || !REPOSITORY_NAME.test(value)) {
    throw new EcrError('InvalidParameterException', `Invalid parameter at 'repositoryName': ${JSON.stringify(value)}`);
  }
  return value;
}

function respond(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}
