import type { AwsCredentialIdentity } from '@smithy/types';
import type { z } from 'zod';
import {
  CheckpointListSchema,
  BuildAnswerSchema,
  ErrorBodySchema,
  LogChunkSchema,
  MetricsPageSchema,
  RunSchema,
  RunsPageSchema,
  StartedPrewarmSchema,
  UploadTicketSchema,
  VolumesPageSchema,
} from './api-types';
import type { CliConfig } from './config';
import { CliError } from './errors';
import { signRequest } from './sigv4';

export type CredentialsSource = () => Promise<AwsCredentialIdentity>;

/** The AWS credential chain (env, SSO, profile, process, IMDS…), as the AWS CLI resolves it. */
export async function defaultCredentials(profile: string | undefined): Promise<CredentialsSource> {
  const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
  const provider = fromNodeProviderChain(profile === undefined ? {} : { profile });
  return async () => {
    try {
      return await provider();
    } catch (error) {
      throw new CliError(
        `No AWS credentials found${profile === undefined ? '' : ` for profile "${profile}"`}: run \`aws configure\` or ` +
          '`aws sso login`, choose a profile with --profile or AWS_PROFILE, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. ' +
          `(${error instanceof Error ? error.message : String(error)})`,
        1,
        { cause: error },
      );
    }
  };
}

type Query = Record<string, string | number | undefined>;

/** The runctl HTTP API; requests to a deployed endpoint are SigV4-signed, to a local one not. */
export class ApiClient {
  constructor(
    private readonly config: CliConfig,
    private readonly credentials?: CredentialsSource,
  ) {}

  get endpoint(): string {
    return this.config.endpoint.origin + this.config.endpoint.pathname.replace(/\/$/, '');
  }

  listRuns(query: Query) {
    return this.call('GET', '/runs', RunsPageSchema, { query });
  }
  getRun(runId: string) {
    return this.call('GET', `/runs/${encodeURIComponent(runId)}`, RunSchema);
  }
  submit(body: { clientToken: string; spec: unknown }) {
    return this.callWithStatus('POST', '/runs', RunSchema, { body });
  }
  cancel(runId: string, force: boolean) {
    return this.call('POST', `/runs/${encodeURIComponent(runId)}/cancel`, RunSchema, { body: { force } });
  }
  logs(runId: string, query: Query) {
    return this.call('GET', `/runs/${encodeURIComponent(runId)}/logs`, LogChunkSchema, { query });
  }
  metrics(runId: string, query: Query) {
    return this.call('GET', `/runs/${encodeURIComponent(runId)}/metrics`, MetricsPageSchema, { query });
  }
  checkpoints(runId: string) {
    return this.call('GET', `/runs/${encodeURIComponent(runId)}/checkpoints`, CheckpointListSchema);
  }
  createUpload(body: { sha256: string; bytes: number }) {
    return this.call('POST', '/uploads', UploadTicketSchema, { body });
  }
  prewarmVolume(body: Record<string, unknown>) {
    return this.callWithStatus('POST', '/volumes', StartedPrewarmSchema, { body });
  }
  listVolumes(query: Query) {
    return this.call('GET', '/volumes', VolumesPageSchema, { query });
  }
  buildImage(body: Record<string, unknown>) {
    return this.callWithStatus('POST', '/images', BuildAnswerSchema, { body });
  }

  async call<S extends z.ZodType>(method: string, path: string, schema: S, options: { query?: Query; body?: unknown } = {}): Promise<z.output<S>> {
    return (await this.callWithStatus(method, path, schema, options)).data;
  }

  async callWithStatus<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    options: { query?: Query; body?: unknown } = {},
  ): Promise<{ status: number; data: z.output<S> }> {
    const response = await this.send(method, path, options);
    const json = parseJson(response.text);
    if (response.status < 200 || response.status > 299) throw this.toError(response.status, json, response.text, method, path);
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new CliError(`The API at ${this.endpoint} answered ${method} ${path} with something runctl does not understand; is it a runctl API of the same version?`);
    }
    return { status: response.status, data: parsed.data };
  }

  /**
   * One request, signed for a deployed endpoint, and the answer as it came: status and body
   * text, error statuses included (`runctl ui` passes them on to the page).
   */
  async send(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<{ status: number; text: string }> {
    const url = new URL(this.endpoint + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    let headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'runctl-cli/0.1.0' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (!this.config.local) {
      if (this.credentials === undefined) throw new CliError('Signing a request to a deployed API needs AWS credentials');
      const region = this.config.region;
      if (region === undefined) {
        throw new CliError(`Cannot tell the AWS region of ${this.endpoint}: pass --region or set AWS_REGION`);
      }
      headers = await signRequest({ method, url, headers, body }, { credentials: await this.credentials(), region });
      delete headers.host; // fetch sets it from the URL
    }

    let response: Response;
    try {
      response = await fetch(url, { method, headers, body });
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
      const code = cause !== undefined && 'code' in cause ? String(cause.code) : (cause?.message ?? String(error));
      throw new CliError(
        `Cannot reach the runctl API at ${this.endpoint} (${code}). Start a local backend with \`runctl dev\`, ` +
          'or deploy the stack (`npx osls deploy`) and point --endpoint or RUNCTL_ENDPOINT at its API URL.',
        1,
        { cause: error },
      );
    }
    return { status: response.status, text: await response.text() };
  }

  private toError(status: number, json: unknown, text: string, method: string, path: string): CliError {
    const body = ErrorBodySchema.safeParse(json);
    const message = (body.success ? (body.data.message ?? body.data.Message) : undefined) ?? text.slice(0, 200);
    if (status === 400) {
      const issues = body.success ? (body.data.issues ?? []) : [];
      const lines = issues.map((i) => `  ${i.path}: ${i.message}`);
      return new CliError(lines.length > 0 ? `${headline(message)}\n${lines.join('\n')}` : message);
    }
    if (status === 403) {
      return new CliError(
        `The API refused the request (${message}). Check that your AWS credentials belong to the account the stack is ` +
          'deployed in and allow execute-api:Invoke, and that --region matches the stack.',
      );
    }
    if (status === 404 && /^Run .* not found$/.test(message)) return new CliError(`${message}. \`runctl ls\` lists your runs.`);
    if (status === 404 && /^(Experiment|Sweep) .* not found$/.test(message)) return new CliError(message);
    const model = /^Model (.*) not found$/.exec(message);
    if (status === 404 && model !== null) return new CliError(`no model ${model[1] ?? ''} (\`runctl models ls\` lists yours)`);
    const version = /^Model (.*) has no version/.exec(message);
    if (status === 404 && version !== null) return new CliError(`${message} (\`runctl models show ${version[1] ?? ''}\` lists its versions and stages)`);
    if (status === 404 && /^Run .* has no attempt /.test(message)) return new CliError(`${message}; \`runctl status\` lists them`);
    if (status === 404) {
      return new CliError(`${this.endpoint} does not serve ${method} ${path}: is the endpoint a runctl API, and is the stack deployed and up to date?`);
    }
    if (status >= 500) {
      const requestId = body.success && body.data.requestId !== undefined ? ` (request id ${body.data.requestId})` : '';
      return new CliError(`The runctl API failed${requestId}: ${message}`);
    }
    return new CliError(message);
  }
}

/** The handlers' 400 message lists the issues after "Invalid …:"; the CLI lists them on their own lines. */
function headline(message: string): string {
  const colon = message.indexOf(': ');
  return colon === -1 ? message : `${message.slice(0, colon)}:`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
