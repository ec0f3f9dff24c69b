import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { CliError } from './errors';

/**
 * Where the API is and how to reach it: `--endpoint`, else RUNCTL_ENDPOINT, else
 * `~/.runctl/config.json` (or the file RUNCTL_CONFIG names). Region and profile follow the AWS
 * CLI: flag, then AWS_REGION / AWS_DEFAULT_REGION / AWS_PROFILE, then the config file.
 */

const ConfigFileSchema = z.object({
  endpoint: z.url('must be the API URL, like https://abc123.execute-api.us-east-1.amazonaws.com').optional(),
  region: z.string().min(1).optional(),
  profile: z.string().min(1).optional(),
});

export interface CliConfig {
  endpoint: URL;
  /** A loopback endpoint (`runctl dev`): requests go unsigned. */
  local: boolean;
  /** Signing region; only needed for a deployed endpoint. */
  region?: string;
  profile?: string;
}

export interface ConfigFlags {
  endpoint?: string;
  region?: string;
  profile?: string;
}

/** Path of the config file. */
export function configFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.RUNCTL_CONFIG ?? join(homedir(), '.runctl', 'config.json');
}

function readConfigFile(path: string): z.infer<typeof ConfigFileSchema> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`${path} is not valid JSON; expected {"endpoint": "https://…", "region": "us-east-1"}`);
  }
  const parsed = ConfigFileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CliError(`${path}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** The region in an API Gateway host name, e.g. `abc.execute-api.eu-west-1.amazonaws.com`. */
export function regionOfEndpoint(url: URL): string | undefined {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(url.hostname)?.[1];
}

/** Resolves the endpoint, region and profile; says how to set the endpoint when there is none. */
export function resolveConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): CliConfig {
  const path = configFilePath(env);
  const file = readConfigFile(path);
  const raw = flags.endpoint ?? env.RUNCTL_ENDPOINT ?? file.endpoint;
  if (raw === undefined || raw === '') {
    throw new CliError(
      'No runctl API endpoint is configured. Start a local backend with `runctl dev` and pass the URL it prints ' +
        'with --endpoint (or set RUNCTL_ENDPOINT), or deploy the stack (`npx osls deploy`) and put its API URL in ' +
        `${path} as {"endpoint": "https://…"}.`,
    );
  }
  let endpoint: URL;
  try {
    endpoint = new URL(raw);
  } catch {
    throw new CliError(`The endpoint "${raw}" is not a URL; expected e.g. http://127.0.0.1:4000 or https://abc123.execute-api.us-east-1.amazonaws.com`);
  }
  const local = LOOPBACK.has(endpoint.hostname);
  const region = flags.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? file.region ?? regionOfEndpoint(endpoint);
  const profile = flags.profile ?? (env.AWS_PROFILE || undefined) ?? file.profile;
  return { endpoint, local, region, profile };
}
