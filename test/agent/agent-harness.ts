import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentConfigInput } from '../../shared/agent/agent-config';
import { buildAgentLaunchCommand } from '../../shared/agent/commands';
import { LocalRunCredentials, startAgentControlApi } from '../../local/agent-control';
import type { RunningHttpApi } from '../../local/http-api';
import { LOCAL_INSTANCE_ROLE, LocalImds } from '../../local/imds';
import { RunSpecSchema } from '../../shared/domain/run-spec';
import type { RunRecord } from '../../shared/domain/run-record';
import type { TaskCallbacks } from '../../shared/ports/run-credentials';
import { startS3rver, type S3rverHandle } from '../support/s3rver';

/**
 * The world the agent tests run the real agent.sh in: s3rver for S3, the local metadata service
 * handing each "instance" its instance role credentials, and the real agent routes (SigV4
 * checked) with the run records in memory and the task tokens answered here, standing in for
 * Step Functions. The tokens live only in this process: the agent never sees one.
 */

export const BUCKET = 'runctl-agent-test';
const FIXTURES = fileURLToPath(new URL('../fixtures/scripts', import.meta.url));

export type Outcome =
  | { kind: 'success'; output: unknown }
  | { kind: 'failure'; error: string | undefined; cause: unknown };

interface TokenState {
  heartbeats: number;
  timedOut: boolean;
  settled: boolean;
  settle: (outcome: Outcome) => void;
}

export interface Launched {
  runId: string;
  attempt: number;
  instanceId: string;
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
  instanceId?: string;
  attempt?: number;
  env?: Record<string, string>;
  argv?: string[];
  resumeFrom?: string;
  imdsEndpoint?: string;
  config?: Partial<AgentConfigInput>;
  /** More instance environment for the agent (e.g. a PATH with a fake docker first). */
  instanceEnv?: Record<string, string>;
  /**
   * Another node of an attempt already launched (a multi-node run): the record gains this
   * instance for the same attempt, and the node reports to the same task token.
   */
  joinAttempt?: boolean;
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
  private readonly outcomes = new Map<string, Promise<Outcome>>();
  private readonly records = new Map<string, RunRecord>();
  private readonly launched: Launched[] = [];
  private readonly roots: string[] = [];
  s3!: S3rverHandle;
  imds = new LocalImds();
  control!: RunningHttpApi;
  credentials!: LocalRunCredentials;
  s3Client!: S3Client;
  codeBundle = '';

  async start(): Promise<void> {
    this.s3 = await startS3rver([BUCKET]);
    await this.imds.start();
    this.credentials = new LocalRunCredentials(this.s3.credentials);
    const tasks: TaskCallbacks = {
      succeedTask: async (token, output) => this.settle(token, { kind: 'success', output: parseJson(output) }),
      failTask: async (token, error, cause) => this.settle(token, { kind: 'failure', error, cause: parseJson(cause) }),
      heartbeatTask: async (token) => {
        const state = this.tokens.get(token);
        if (state === undefined) return false;
        state.heartbeats += 1;
        return !state.timedOut;
      },
    };
    this.control = await startAgentControlApi({
      imds: this.imds,
      deps: () => ({
        // Single-node runs: read only for a multi-node run's failures.
        instances: { instanceStates: async (ids) => new Map(ids.map((id) => [id, 'running'])) },
        store: {
          get: async (runId) => this.records.get(runId),
          updateAttempt: async (runId, attempt, patch) => {
            const record = this.records.get(runId);
            if (record !== undefined) record.attempts = record.attempts.map((a) => (a.attempt === attempt ? { ...a, ...patch } : a));
          },
          updateNode: async (runId, attempt, rank, patch) => {
            const record = this.records.get(runId);
            if (record !== undefined) {
              record.attempts = record.attempts.map((a) =>
                a.attempt === attempt ? { ...a, nodes: a.nodes?.map((n) => (n.rank === rank ? { ...n, ...patch } : n)) } : a,
              );
            }
          },
        },
        credentials: this.credentials,
        tasks,
        config: {
          instanceRoleId: LOCAL_INSTANCE_ROLE.roleId,
          partition: 'aws',
          region: 'us-east-1',
          accountId: '000000000000',
          runsBucket: BUCKET,
          secretsPrefix: '/runctl/test/secrets',
        },
      }),
    });
    this.s3Client = new S3Client({
      endpoint: this.s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: this.s3.credentials,
    });
    const bundleDir = mkdtempSync(join(tmpdir(), 'runctl-bundle-'));
    const bundle = join(bundleDir, 'code.tar.gz');
    const tar = spawnSync('tar', ['-czf', bundle, '-C', FIXTURES, '.']);
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
    this.codeBundle = await this.putBundle(readFileSync(bundle));
    rmSync(bundleDir, { recursive: true, force: true });
  }

  /** Stores a code bundle under its sha256, as the uploads route does; returns its URI. */
  async putBundle(bytes: Buffer): Promise<string> {
    const key = `bundles/${createHash('sha256').update(bytes).digest('hex')}.tar.gz`;
    await this.put(key, bytes);
    return `s3://${BUCKET}/${key}`;
  }

  /** Settles a token's wait once; a second outcome (or an unknown token) is refused like Step Functions does. */
  private settle(token: string, outcome: Outcome): boolean {
    const state = this.tokens.get(token);
    if (state === undefined || state.settled) return false;
    state.settled = true;
    state.settle(outcome);
    return true;
  }

  /** The instance role an instance's metadata service serves: its name, and the credentials document. */
  instanceRole(instanceId: string): { name: string; document: string } {
    const c = this.imds.credentialsOf(instanceId);
    const document = { Code: 'Success', AccessKeyId: c.accessKeyId, SecretAccessKey: c.secretAccessKey, Token: c.sessionToken };
    return { name: LOCAL_INSTANCE_ROLE.name, document: JSON.stringify({ ...document, Expiration: new Date(Date.now() + 3600_000).toISOString() }) };
  }

  /** The run record the agent routes read (the attempt's instance and the task token). */
  record(runId: string): RunRecord | undefined {
    return this.records.get(runId);
  }

  /** Stores a new task token for the run's attempt, as a retried LaunchTraining would. */
  rotateToken(launched: Launched): string {
    const record = this.records.get(launched.runId);
    if (record === undefined) throw new Error(`no record of ${launched.runId}`);
    const token = `SECRET-TOKEN-${randomUUID()}`;
    const previous = this.tokens.get(launched.token);
    if (previous !== undefined) this.tokens.set(token, previous);
    this.tokens.delete(launched.token);
    this.records.set(launched.runId, { ...record, taskToken: token });
    return token;
  }

  async stop(): Promise<void> {
    for (const launched of this.launched) await this.killAgent(launched.stateDir);
    for (const root of this.roots) rmSync(root, { recursive: true, force: true });
    this.s3Client?.destroy();
    await this.control?.close();
    await this.imds.close();
    await this.s3?.stop();
  }

  /**
   * Environment of the instance: only the endpoints differ from EC2. The key pair stands for
   * whatever else a process on the instance might hold: the launch command drops it.
   */
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

  /**
   * Records that `attempt` of `runId` runs on `instanceId` (a new one by default) and waits on a
   * new task token, as ProvisionInstance and LaunchTraining leave the run record.
   */
  registerAttempt(runId: string, attempt: number, instanceId = `i-${randomUUID().replaceAll('-', '').slice(0, 17)}`) {
    const token = `SECRET-TOKEN-${randomUUID()}`;
    let settle: (outcome: Outcome) => void = () => undefined;
    const outcome = new Promise<Outcome>((resolve) => (settle = resolve));
    const state: TokenState = { heartbeats: 0, timedOut: false, settled: false, settle };
    this.tokens.set(token, state);
    const now = new Date().toISOString();
    this.records.set(runId, {
      runId,
      owner: 'arn:aws:iam::000000000000:user/agent-test',
      spec: RunSpecSchema.parse({ name: 'agent-test', code: { bundle: this.codeBundle, entrypoint: 'train.py' }, instance: { types: 'c5.large' } }),
      specHash: 'test',
      status: 'TRAINING',
      createdAt: now,
      updatedAt: now,
      attempts: [{ attempt, instanceId, spot: false, startedAt: now }],
      taskToken: token,
      taskTokenAttempt: attempt,
      costUsd: 0,
      interruptions: 0,
      userFailures: 0,
    });
    this.outcomes.set(token, outcome);
    return { instanceId, token, state, outcome };
  }

  /** Adds another instance (node) to the attempt `registerAttempt` recorded; it shares the task token. */
  joinAttempt(runId: string, attempt: number, instanceId = `i-${randomUUID().replaceAll('-', '').slice(0, 17)}`) {
    const record = this.records.get(runId);
    const token = record?.taskToken;
    const state = token === undefined ? undefined : this.tokens.get(token);
    const outcome = token === undefined ? undefined : this.outcomes.get(token);
    if (record === undefined || token === undefined || state === undefined || outcome === undefined || record.taskTokenAttempt !== attempt) {
      throw new Error(`attempt ${attempt} of ${runId} was not launched`);
    }
    record.attempts = [...record.attempts, { attempt, instanceId, spot: false, startedAt: new Date().toISOString() }];
    return { instanceId, token, state, outcome };
  }

  async launch(options: LaunchOptions = {}): Promise<Launched> {
    const runId = options.runId ?? `run-${randomUUID().slice(0, 8)}`;
    const attempt = options.attempt ?? 1;
    const { instanceId, token, state, outcome } = options.joinAttempt
      ? this.joinAttempt(runId, attempt, options.instanceId)
      : this.registerAttempt(runId, attempt, options.instanceId);
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
      control: { endpoint: this.control.url },
      ...options.config,
    });
    const stateDir = join(root, 'opt/runctl/attempts', runId, String(attempt));
    const run = async () => {
      const result = await this.runOnInstance(root, command, options.imdsEndpoint ?? this.imds.endpointFor(instanceId), options.instanceEnv);
      if (result.code !== 0) throw new Error(`launch command failed (${result.code}): ${result.stderr}`);
      return result.stdout;
    };
    await run();
    const launched: Launched = {
      runId,
      attempt,
      instanceId,
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
