import { CreateTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentConfigInput } from '../../shared/agent/agent-config';
import { buildAgentLaunchCommand } from '../../shared/agent/commands';
import {
  InvalidTokenError,
  startTaskCallbackServer,
  TaskTimedOutError,
  type TaskCallbackServer,
} from '../../local/task-callback-server';
import { startDynalite, type RunningDynalite } from '../support/dynalite';
import { startS3rver, type S3rverHandle } from '../support/s3rver';

/**
 * The world the agent tests run the real agent.sh in: s3rver for S3, dynalite for the run
 * record holding the task token, and the callback server standing in for Step Functions.
 */

export const BUCKET = 'runctl-agent-test';
export const TABLE = 'runctl-agent-runs';
const FIXTURES = fileURLToPath(new URL('../fixtures/scripts', import.meta.url));

export type Outcome =
  | { kind: 'success'; output: unknown }
  | { kind: 'failure'; error: string | undefined; cause: unknown };

interface TokenState {
  heartbeats: number;
  timedOut: boolean;
  settle: (outcome: Outcome) => void;
}

export interface Launched {
  runId: string;
  attempt: number;
  token: string;
  root: string;
  stateDir: string;
  command: string;
  outcome: Promise<Outcome>;
  heartbeats(): number;
  /** Makes the next heartbeats answer TaskTimedOut, as when the execution moved on. */
  timeOut(): void;
  /** Runs the launch command again, as a retried LaunchTraining state would. */
  relaunch(): Promise<string>;
  waitForAgentExit(): Promise<void>;
}

export interface LaunchOptions {
  runId?: string;
  attempt?: number;
  env?: Record<string, string>;
  argv?: string[];
  resumeFrom?: string;
  imdsEndpoint?: string;
  config?: Partial<AgentConfigInput>;
  /** More instance environment for the agent (e.g. a PATH with a fake docker first). */
  instanceEnv?: Record<string, string>;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class AgentWorld {
  private readonly tokens = new Map<string, TokenState>();
  private readonly launched: Launched[] = [];
  private readonly roots: string[] = [];
  s3!: S3rverHandle;
  dynamo!: RunningDynalite;
  callbacks!: TaskCallbackServer;
  s3Client!: S3Client;
  codeBundle = `s3://${BUCKET}/bundles/code.tar.gz`;

  async start(): Promise<void> {
    this.s3 = await startS3rver([BUCKET]);
    this.dynamo = await startDynalite();
    this.callbacks = await startTaskCallbackServer({
      success: (token, output) => this.state(token).settle({ kind: 'success', output: parseJson(output) }),
      failure: (token, error, cause) => this.state(token).settle({ kind: 'failure', error, cause: parseJson(cause) }),
      heartbeat: (token) => {
        const state = this.state(token);
        state.heartbeats += 1;
        if (state.timedOut) throw new TaskTimedOutError('Task Timed Out');
      },
    });
    this.s3Client = new S3Client({
      endpoint: this.s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: this.s3.credentials,
    });
    const dynamo = new DynamoDBClient({
      endpoint: this.dynamo.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await dynamo.send(
      new CreateTableCommand({
        TableName: TABLE,
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    this.dynamoClient = dynamo;
    const bundleDir = mkdtempSync(join(tmpdir(), 'runctl-bundle-'));
    const bundle = join(bundleDir, 'code.tar.gz');
    const tar = spawnSync('tar', ['-czf', bundle, '-C', FIXTURES, '.']);
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
    await this.put('bundles/code.tar.gz', readFileSync(bundle));
    rmSync(bundleDir, { recursive: true, force: true });
  }

  private dynamoClient!: DynamoDBClient;

  private state(token: string): TokenState {
    const state = this.tokens.get(token);
    if (!state) throw new InvalidTokenError('Invalid Token');
    return state;
  }

  async stop(): Promise<void> {
    for (const launched of this.launched) await this.killAgent(launched.stateDir);
    for (const root of this.roots) rmSync(root, { recursive: true, force: true });
    this.s3Client?.destroy();
    this.dynamoClient?.destroy();
    await this.callbacks?.close();
    await this.dynamo?.close();
    await this.s3?.stop();
  }

  /** Environment of the instance: only the endpoints differ from EC2. */
  instanceEnv(root: string, imdsEndpoint = 'off'): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: 'C.UTF-8',
      RUNCTL_INSTANCE_ROOT: root,
      RUNCTL_IMDS_ENDPOINT: imdsEndpoint,
      AWS_ACCESS_KEY_ID: this.s3.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: this.s3.credentials.secretAccessKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_ENDPOINT_URL_S3: this.s3.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: this.dynamo.endpoint,
      AWS_ENDPOINT_URL_SFN: this.callbacks.endpoint,
    };
  }

  /** Runs bash text the way SSM's AWS-RunShellScript would, on the "instance" at root. */
  runOnInstance(
    root: string,
    script: string,
    imdsEndpoint?: string,
    extraEnv: Record<string, string> = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const env = { ...this.instanceEnv(root, imdsEndpoint), ...extraEnv };
      const child = spawn('bash', ['-s'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(script);
    });
  }

  newRoot(): string {
    const root = mkdtempSync(join(tmpdir(), 'runctl-instance-'));
    this.roots.push(root);
    return root;
  }

  async launch(options: LaunchOptions = {}): Promise<Launched> {
    const runId = options.runId ?? `run-${randomUUID().slice(0, 8)}`;
    const attempt = options.attempt ?? 1;
    const token = `SECRET-TOKEN-${randomUUID()}`;
    let settle: (outcome: Outcome) => void = () => undefined;
    const outcome = new Promise<Outcome>((resolve) => (settle = resolve));
    const state: TokenState = { heartbeats: 0, timedOut: false, settle };
    this.tokens.set(token, state);
    await this.dynamoClient.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: {
          pk: { S: `RUN#${runId}` },
          sk: { S: 'RUN' },
          taskToken: { S: token },
          taskTokenAttempt: { N: String(attempt) },
        },
      }),
    );
    const root = this.newRoot();
    const command = buildAgentLaunchCommand({
      runId,
      attempt,
      region: 'us-east-1',
      bucket: BUCKET,
      runPrefix: `runs/${runId}`,
      codeBundle: this.codeBundle,
      resumeFrom: options.resumeFrom,
      argv: options.argv ?? ['python3', 'train.py'],
      env: options.env ?? {},
      // Each AWS CLI call costs ~0.4 s of CPU on a 2-core machine: keep the background work sparse.
      checkpoint: { intervalSeconds: 5, graceSeconds: 1.5 },
      metricDefinitions: [{ name: 'val_accuracy', regex: 'val_accuracy: ([0-9.]+)' }],
      heartbeatSeconds: 3,
      imdsPollSeconds: 0.5,
      tokenSource: { table: TABLE, runId, waitSeconds: 10 },
      ...options.config,
    });
    const stateDir = join(root, 'opt/runctl/attempts', runId, String(attempt));
    const run = async () => {
      const result = await this.runOnInstance(root, command, options.imdsEndpoint, options.instanceEnv);
      if (result.code !== 0) throw new Error(`launch command failed (${result.code}): ${result.stderr}`);
      return result.stdout;
    };
    await run();
    const launched: Launched = {
      runId,
      attempt,
      token,
      root,
      stateDir,
      command,
      outcome,
      heartbeats: () => state.heartbeats,
      timeOut: () => {
        state.timedOut = true;
      },
      relaunch: run,
      waitForAgentExit: async () => {
        await waitFor(() => existsSync(join(stateDir, 'agent.pid')), 'the agent pid file');
        const pid = Number(readFileSync(join(stateDir, 'agent.pid'), 'utf8'));
        await waitFor(() => !alive(pid), 'the agent to exit');
      },
    };
    this.launched.push(launched);
    return launched;
  }

  private async killAgent(stateDir: string): Promise<void> {
    const pidFile = join(stateDir, 'agent.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8'));
    if (!alive(pid)) return;
    process.kill(pid, 'SIGTERM'); // its EXIT trap kills the training process group
    await waitFor(() => !alive(pid), 'the agent to stop', 5_000).catch(() => process.kill(pid, 'SIGKILL'));
  }

  async put(key: string, body: string | Buffer): Promise<void> {
    await this.s3Client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  }

  async text(key: string): Promise<string | undefined> {
    try {
      const object = await this.s3Client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      return await object.Body?.transformToString();
    } catch (error) {
      if (error instanceof Error && error.name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async keys(prefix: string): Promise<string[]> {
    const listed = await this.s3Client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    return (listed.Contents ?? []).flatMap((c) => (c.Key ? [c.Key] : [])).sort();
  }
}
