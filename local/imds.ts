import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

/**
 * A fake of the EC2 instance metadata service (IMDSv2 only, as the EC2 adapter launches with
 * `HttpTokens: required`) for the local backend. One loopback server serves every local instance
 * under its own path prefix: the agent of instance i-local… gets
 * `RUNCTL_IMDS_ENDPOINT=http://127.0.0.1:<port>/i-local…` and then asks the same paths it asks on
 * EC2 (`/latest/api/token`, `/latest/meta-data/spot/instance-action`).
 */

/** The body of `meta-data/spot/instance-action` once a spot interruption is scheduled. */
export interface InstanceActionNotice {
  action: 'terminate' | 'stop' | 'hibernate';
  /** ISO time (UTC, second precision on EC2) at which the action happens. */
  time: string;
}

/** What the metadata service knows about an instance. */
export interface InstanceMetadata {
  availabilityZone: string;
  instanceType?: string;
}

export interface LocalImdsOptions {
  /** Metadata of an instance, or undefined when no such instance exists (every path then 404s). */
  lookup?: (instanceId: string) => Promise<InstanceMetadata | undefined> | InstanceMetadata | undefined;
  now?: () => number;
}

/** IMDSv2 bounds the token TTL header to 1 second … 6 hours. */
const TtlSeconds = z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(1).max(21_600));

const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';

/**
 * The instance role every local instance has: its credentials are served at
 * `meta-data/iam/security-credentials/<role>` like EC2's, one key pair per instance, and the
 * local agent routes check a request's SigV4 signature against them (`identify`), so a local
 * instance proves which instance it is the way an EC2 instance does.
 */
export const LOCAL_INSTANCE_ROLE = { name: 'runctl-local-training', roleId: 'AROALOCALTRAINING' } as const;

/** An instance role key pair, as the metadata service hands it out. */
export interface InstanceRoleCredentials {
  instanceId: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

interface IssuedToken {
  instanceId: string;
  expiresAt: number;
}

export class LocalImds {
  private server: Server | undefined;
  private port = 0;
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly notices = new Map<string, InstanceActionNotice>();
  private readonly rebalances = new Map<string, string>();
  private readonly roleCredentials = new Map<string, InstanceRoleCredentials>();
  private readonly lookup: NonNullable<LocalImdsOptions['lookup']>;
  private readonly now: () => number;

  constructor(options: LocalImdsOptions = {}) {
    this.lookup = options.lookup ?? (() => ({ availabilityZone: 'local-1a' }));
    this.now = options.now ?? Date.now;
  }

  /** Listens on a free loopback port; returns the base URL. */
  async start(): Promise<string> {
    const server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        respond(response, 500, `internal error: ${error instanceof Error ? error.message : String(error)}`);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address: AddressInfo | string | null = server.address();
    if (address === null || typeof address === 'string') throw new Error('The metadata server has no TCP address');
    this.server = server;
    this.port = address.port;
    return this.baseUrl();
  }

  baseUrl(): string {
    if (this.server === undefined) throw new Error('The metadata server is not started');
    return `http://127.0.0.1:${this.port}`;
  }

  /** What an instance's agent uses in place of http://169.254.169.254. */
  endpointFor(instanceId: string): string {
    return `${this.baseUrl()}/${instanceId}`;
  }

  /** Schedules a spot interruption: `spot/instance-action` (and `spot/termination-time`) stop 404ing. */
  notice(instanceId: string, notice: InstanceActionNotice): void {
    this.notices.set(instanceId, notice);
  }

  /** Publishes a rebalance recommendation under `events/recommendations/rebalance`. */
  rebalance(instanceId: string, noticeTime: string): void {
    this.rebalances.set(instanceId, noticeTime);
  }

  /** The instance role credentials of an instance (made on first use, then stable). */
  credentialsOf(instanceId: string): InstanceRoleCredentials {
    let found = this.roleCredentials.get(instanceId);
    if (found === undefined) {
      found = {
        instanceId,
        accessKeyId: `ASIALOCAL${randomBytes(8).toString('hex').toUpperCase()}`,
        secretAccessKey: randomBytes(30).toString('base64'),
        sessionToken: randomBytes(48).toString('base64'),
      };
      this.roleCredentials.set(instanceId, found);
    }
    return found;
  }

  /** Which instance holds this access key, if any (the instance's own credentials). */
  identify(accessKeyId: string): InstanceRoleCredentials | undefined {
    return [...this.roleCredentials.values()].find((c) => c.accessKeyId === accessKeyId);
  }

  /** Drops everything known about an instance (it was terminated). */
  forget(instanceId: string): void {
    this.roleCredentials.delete(instanceId);
    this.notices.delete(instanceId);
    this.rebalances.delete(instanceId);
    for (const [token, issued] of this.tokens) if (issued.instanceId === instanceId) this.tokens.delete(token);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    await new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://imds.local');
    const match = /^\/([^/]+)(\/latest\/.*)$/.exec(url.pathname);
    const instanceId = match?.[1];
    const path = match?.[2];
    if (instanceId === undefined || path === undefined) return respond(response, 404, 'Not Found');
    const metadata = await this.lookup(instanceId);
    if (metadata === undefined) return respond(response, 404, 'Not Found');

    if (path === '/latest/api/token') {
      if (request.method !== 'PUT') return respond(response, 405, 'Method Not Allowed');
      const ttl = TtlSeconds.safeParse(request.headers[TTL_HEADER]);
      if (!ttl.success) return respond(response, 400, 'Bad Request');
      const token = randomBytes(32).toString('base64');
      this.tokens.set(token, { instanceId, expiresAt: this.now() + ttl.data * 1000 });
      response.setHeader(TTL_HEADER, String(ttl.data));
      return respond(response, 200, token);
    }

    if (request.method !== 'GET' && request.method !== 'HEAD') return respond(response, 405, 'Method Not Allowed');
    if (!this.validToken(request.headers[TOKEN_HEADER], instanceId)) return respond(response, 401, 'Unauthorized');

    const body = this.metadataValue(instanceId, metadata, path);
    if (body === undefined) return respond(response, 404, 'Not Found');
    return respond(response, 200, body);
  }

  private validToken(header: string | string[] | undefined, instanceId: string): boolean {
    if (typeof header !== 'string') return false;
    const issued = this.tokens.get(header);
    if (issued === undefined || issued.instanceId !== instanceId) return false;
    if (issued.expiresAt <= this.now()) {
      this.tokens.delete(header);
      return false;
    }
    return true;
  }

  private metadataValue(instanceId: string, metadata: InstanceMetadata, path: string): string | undefined {
    const notice = this.notices.get(instanceId);
    const rebalance = this.rebalances.get(instanceId);
    switch (path) {
      case '/latest/meta-data/instance-id':
        return instanceId;
      case '/latest/meta-data/placement/availability-zone':
        return metadata.availabilityZone;
      case '/latest/meta-data/placement/region':
        return metadata.availabilityZone.replace(/[a-z]$/, '');
      case '/latest/meta-data/instance-type':
        return metadata.instanceType;
      case '/latest/meta-data/spot/instance-action':
        return notice === undefined ? undefined : JSON.stringify({ action: notice.action, time: notice.time });
      case '/latest/meta-data/spot/termination-time':
        return notice?.action === 'terminate' ? notice.time : undefined;
      case '/latest/meta-data/iam/security-credentials/':
        return LOCAL_INSTANCE_ROLE.name;
      case `/latest/meta-data/iam/security-credentials/${LOCAL_INSTANCE_ROLE.name}`: {
        const c = this.credentialsOf(instanceId);
        return JSON.stringify({
          Code: 'Success',
          Type: 'AWS-HMAC',
          AccessKeyId: c.accessKeyId,
          SecretAccessKey: c.secretAccessKey,
          Token: c.sessionToken,
          Expiration: new Date(this.now() + 6 * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        });
      }
      case '/latest/meta-data/events/recommendations/rebalance':
        return rebalance === undefined ? undefined : JSON.stringify({ noticeTime: rebalance });
      default:
        return undefined;
    }
  }
}

function respond(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  response.end(body);
}
