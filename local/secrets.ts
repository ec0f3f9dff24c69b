import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { z } from 'zod';
import { ownerSecretsPath } from '../shared/domain/run-access';
import { listenLoopback } from './loopback';

/**
 * Secrets on the local backend. There is no Parameter Store or Secrets Manager here, so the
 * values live in one file under the backend root, `<root>/secrets.json` (mode 0600), managed by
 * `runctl local secrets set|ls|rm`, and a small loopback endpoint answers the two calls the agent
 * makes with them — `AmazonSSM.GetParameter` and `secretsmanager.GetSecretValue`, the same JSON
 * protocol as AWS — so the real agent resolves `spec.secrets` the same way it does on EC2. Like
 * s3rver and dynalite it checks no signature and no IAM policy: the owner path is enforced when
 * the run is submitted, not when the instance reads (docs/local.md).
 */

/** Who owns runs submitted on the local backend (the identity `runctl dev` signs every request in as). */
export const LOCAL_OWNER = 'arn:aws:iam::000000000000:user/local';

/** Where local runs' owners keep secrets (the local stand-in for `custom.secretsPrefix`). */
export const LOCAL_SECRETS_PREFIX = '/runctl/local/secrets';

export const SECRETS_FILE = 'secrets.json';

/** The path under which the local owner's secrets live: `/runctl/local/secrets/<owner key>/`. */
export function localSecretsPath(owner = LOCAL_OWNER): string {
  return ownerSecretsPath(LOCAL_SECRETS_PREFIX, owner);
}

/** Short names of `runctl local secrets set NAME`: one segment or a few, as Parameter Store allows. */
export const SecretNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'must be a name like wandb-key or team/mlflow-password (letters, digits, "_", ".", "-", "/")')
  .max(200, 'must be at most 200 characters')
  .refine((name) => !name.split('/').some((part) => /^\.+$/.test(part)), 'must be a name like wandb-key or team/mlflow-password (no "." or ".." segments)');

const SecretsFileSchema = z.object({
  /** Full name (`/runctl/local/secrets/<owner key>/wandb-key`) → value. */
  secrets: z.record(z.string(), z.string()),
});

/** The secrets file of a backend root: read at every request, written whole (temporary file, then rename). */
export class LocalSecretsFile {
  readonly path: string;

  constructor(root: string) {
    this.path = join(root, SECRETS_FILE);
  }

  async read(): Promise<Record<string, string>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return {};
      throw error;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined; // JSON.parse's message quotes the text: it must not reach a log
    }
    const parsed = SecretsFileSchema.safeParse(value);
    if (!parsed.success) throw new Error(`${this.path} is not a runctl secrets file; remove it or fix it`);
    return parsed.data.secrets;
  }

  /** Sets (or replaces) one secret by its full name. */
  async set(name: string, value: string): Promise<void> {
    await this.write({ ...(await this.read()), [name]: value });
  }

  /** Removes one secret; false when there was none of that name. */
  async remove(name: string): Promise<boolean> {
    const secrets = await this.read();
    if (!Object.hasOwn(secrets, name)) return false;
    delete secrets[name];
    await this.write(secrets);
    return true;
  }

  private async write(secrets: Record<string, string>): Promise<void> {
    const dir = join(this.path, '..');
    await mkdir(dir, { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ secrets }, null, 2), { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, this.path);
  }
}

/** The name a Secrets Manager SecretId stands for: the name itself, or the name inside an ARN (with or without its 6-character suffix). */
function secretNamesOf(secretId: string): string[] {
  const arn = /^arn:[^:]+:secretsmanager:[^:]+:\d{12}:secret:(.+)$/.exec(secretId);
  const name = arn?.[1] ?? secretId;
  const unsuffixed = /^(.+)-[A-Za-z0-9]{6}$/.exec(name)?.[1];
  return unsuffixed === undefined ? [name] : [name, unsuffixed];
}

const GetParameterSchema = z.object({ Name: z.string() });
const GetSecretValueSchema = z.object({ SecretId: z.string() });

type Answer = { status: number; body: Record<string, unknown> };

function fault(type: string, message: string): Answer {
  return { status: 400, body: { __type: type, message } };
}

/** One JSON 1.1 request of either service, answered from the file. */
async function answer(target: string, body: unknown, file: LocalSecretsFile, region: string): Promise<Answer> {
  const secrets = await file.read();
  if (target === 'AmazonSSM.GetParameter') {
    const request = GetParameterSchema.safeParse(body);
    if (!request.success) return fault('ValidationException', 'Name is required');
    const value = secrets[request.data.Name];
    if (value === undefined) return fault('ParameterNotFound', `Parameter ${request.data.Name} not found.`);
    const arn = `arn:aws:ssm:${region}:000000000000:parameter${request.data.Name}`;
    return { status: 200, body: { Parameter: { Name: request.data.Name, Type: 'SecureString', Value: value, Version: 1, ARN: arn } } };
  }
  if (target === 'secretsmanager.GetSecretValue') {
    const request = GetSecretValueSchema.safeParse(body);
    if (!request.success) return fault('InvalidParameterException', 'SecretId is required');
    const name = secretNamesOf(request.data.SecretId).find((candidate) => Object.hasOwn(secrets, candidate));
    if (name === undefined) return fault('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    return { status: 200, body: { ARN: `arn:aws:secretsmanager:${region}:000000000000:secret:${name}`, Name: name, SecretString: secrets[name] } };
  }
  return fault('UnknownOperationException', `${target} is not served by the local backend (GetParameter and GetSecretValue are)`);
}

async function bodyOf(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    return undefined;
  }
}

export interface LocalSecretsEndpoint {
  /** `http://127.0.0.1:<port>`: AWS_ENDPOINT_URL_SSM and AWS_ENDPOINT_URL_SECRETS_MANAGER of local instances. */
  url: string;
  close(): Promise<void>;
}

/** Starts the Parameter Store / Secrets Manager stand-in over the backend root's secrets file. */
export async function startLocalSecretsEndpoint(root: string, region: string): Promise<LocalSecretsEndpoint> {
  const file = new LocalSecretsFile(root);
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    void (async () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      const result =
        request.method === 'POST' ? await answer(target, await bodyOf(request), file, region) : fault('UnknownOperationException', 'POST a JSON request');
      response.writeHead(result.status, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify(result.body));
    })().catch((error: unknown) => {
      response.writeHead(500, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify({ __type: 'InternalFailure', message: error instanceof Error ? error.message : 'failed' }));
    });
  });
  const { url, close } = await listenLoopback(server);
  return { url, close };
}
