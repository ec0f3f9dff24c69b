import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { CapacityUnavailableError, InstanceLostError, InstanceNotReadyError, NotFoundError, PrecheckFailedError, RunInvalidError } from '../shared/errors';
import type {
  CapacityMiss,
  CommandResult,
  Compute,
  InstanceLifecycleState,
  InstanceReadiness,
  LaunchNodesRequest,
  LaunchRequest,
  LaunchedInstance,
  TaggedInstance,
} from '../shared/ports/compute';
import { STACK_TAG } from '../shared/ports/stack-tag';
import { latencyModel, ThrottledLink, throttlesS3, type LatencyModel } from './latency';
import { isAlive, terminateMarked } from './process-tree';

/**
 * Compute on this machine. An "instance" is a sandbox directory `<root>/instances/<id>` plus
 * every process started in it; an SSM command is the same bash text run there in its own process
 * group, with the AWS CLI pointed at the local endpoints. Every process of an instance carries
 * `RUNCTL_LOCAL_INSTANCE=<id>` in its environment, which survives the agent's `setsid`, so
 * terminate can find and kill all of them the way EC2 ends every process of a terminated VM.
 * Instances are recorded in `<root>/instances/registry.json`, so a restarted control plane
 * still knows them (and a retried launch still returns the same instance).
 */

/**
 * The PATH an instance's commands run with: this machine's, with the Python interpreter's own
 * `bin` directory ahead of any version-manager shim directory (pyenv's `shims`). An AMI runs
 * `python3` and `aws` directly; a shim re-resolves the version on every start, about 0.1 s each
 * here, and an instance starts them for every credential fetch, heartbeat and copy. Directories
 * put ahead of the shims (a test's fake tools) keep their place. Computed once per process.
 */
export function instancePath(path: string | undefined = process.env.PATH): string {
  const entries = (path ?? '').split(delimiter);
  const shims = entries.findIndex((e) => /(^|\/)shims\/?$/.test(e));
  if (shims < 0) return path ?? '';
  const bin = interpreterBin();
  if (bin === undefined || entries.includes(bin)) return path ?? '';
  return [...entries.slice(0, shims), bin, ...entries.slice(shims)].join(delimiter);
}

let interpreterBinCache: { dir: string | undefined } | undefined;
function interpreterBin(): string | undefined {
  if (interpreterBinCache === undefined) {
    let dir: string | undefined;
    try {
      // Through the shim itself, so the version it would pick is the one whose bin goes first.
      dir = dirname(execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 10_000 }).trim());
    } catch {
      // No python3 on this machine: leave PATH as it is (the agent's own checks say what is missing).
      dir = undefined;
    }
    interpreterBinCache = { dir };
  }
  return interpreterBinCache.dir;
}

/** The environment variable that marks every process of a local instance. */
export const INSTANCE_MARKER = 'RUNCTL_LOCAL_INSTANCE';

/** The stack tag of local instances unless another stack is configured. */
export const LOCAL_STACK = 'runctl-local';

/** The availability zone of local instances unless other zones are configured. */
export const LOCAL_ZONE = 'local-1a';

/** When a terminated instance's container is looked for again (vfs creates take seconds under load). */
const CONTAINER_SWEEPS_MS = [5_000, 20_000, 60_000];

/** SSM's GetCommandInvocation returns at most this many characters of each stream. */
const MAX_OUTPUT_CHARS = 24_000;

/** What the simulated capacity says for one (type, zone, market) try: `ok` or EC2's refusal code. */
export type CapacityAnswer =
  | 'ok'
  | 'InsufficientInstanceCapacity'
  | 'MaxSpotInstanceCountExceeded'
  | 'SpotMaxPriceTooLow'
  | 'InstanceLimitExceeded'
  | 'VcpuLimitExceeded'
  | 'Unsupported';

/**
 * `count`: the instances the try asks for at once (a multi-node fleet; 1 otherwise), so a
 * simulator can have room for fewer nodes than a run needs, as a zone short of capacity has.
 */
export type CapacitySimulator = (instanceType: string, availabilityZone: string, spot: boolean, count: number) => CapacityAnswer;

export type StateListener = (instanceId: string, state: InstanceLifecycleState) => void | Promise<void>;

export interface LocalComputeOptions {
  /** Directory holding instances/ (default `.runctl`). */
  root?: string;
  /**
   * The `runctl:stack` tag of the instances launched here (default `runctl-local`). As on EC2,
   * the listing sees only this stack's instances, whoever else shares the registry.
   */
  stack?: string;
  /** How long an instance stays pending (default: the latency model's launchMs). */
  bootMs?: number;
  /** Launch, SSM and S3 timings (default: the `instant` profile). See local/latency.ts. */
  latency?: LatencyModel;
  /** How long terminate waits after SIGTERM before SIGKILL (default 2 s). */
  terminateGraceMs?: number;
  /** Simulated capacity (default: always ok). */
  capacity?: CapacitySimulator;
  /** Zones to walk, in order (default `local-1a`). */
  zones?: readonly string[];
  /** AWS endpoints the instance's AWS CLI talks to (AWS_ENDPOINT_URL_<SERVICE>). */
  endpoints?: { s3?: string; dynamodb?: string; sfn?: string; ssm?: string; secretsManager?: string };
  credentials?: { accessKeyId: string; secretAccessKey: string };
  region?: string;
  /** The metadata endpoint of an instance (see LocalImds.endpointFor); without it the agent's metadata poll is off. */
  imdsEndpoint?: (instanceId: string) => string;
  /**
   * The Docker engine instances use (DOCKER_HOST) and the ECR endpoint their AWS CLI logs in
   * through. Terminating an instance also removes its training container, as ending a VM ends
   * its containers: here the engine outlives the instance.
   */
  docker?: { host: string; ecrEndpoint?: string };
  /** Called on every lifecycle change, like EC2's state-change events; never awaited. */
  onStateChange?: StateListener;
  now?: () => Date;
}

const LifecycleState = z.enum(['pending', 'running', 'shutting-down', 'terminated', 'stopping', 'stopped']);

const InstanceRecordSchema = z.object({
  instanceId: z.string(),
  clientToken: z.string(),
  runId: z.string(),
  attempt: z.number().int(),
  /** A node's rank in a multi-node run (tag `runctl:rank`); absent on single-node instances. */
  rank: z.number().int().optional(),
  instanceType: z.string(),
  availabilityZone: z.string(),
  spot: z.boolean(),
  launchedAt: z.string(),
  /** When a pending instance counts as running (launch time + boot time). */
  runningAt: z.string(),
  /** When its SSM agent counts as online (running + the latency model's ssmOnlineMs); absent: at once. */
  onlineAt: z.string().optional(),
  state: LifecycleState,
  tags: z.record(z.string(), z.string()),
  misses: z.array(
    z.object({ instanceType: z.string(), subnetId: z.string().optional(), spot: z.boolean(), code: z.string() }),
  ),
});
type InstanceRecord = z.infer<typeof InstanceRecordSchema>;

const RegistrySchema = z.object({ instances: z.array(InstanceRecordSchema) });
type Registry = z.infer<typeof RegistrySchema>;

/** Runs the user's script under `timeout` and records its exit code (written last, atomically). */
const COMMAND_WRAPPER = [
  'dir=$2; limit=$3; started=$SECONDS',
  'timeout --kill-after=10 "$limit" bash -c "$1" >"$dir/stdout" 2>"$dir/stderr" </dev/null',
  'code=$?',
  'if { [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; } && (( SECONDS - started >= limit )); then : >"$dir/timed-out"; fi',
  'printf "%s\\n" "$code" >"$dir/exit.tmp" && mv "$dir/exit.tmp" "$dir/exit"',
].join('\n');

export class LocalCompute implements Compute {
  readonly root: string;
  private readonly options: LocalComputeOptions;
  private readonly listeners = new Set<StateListener>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly stopping = new Map<string, Promise<void>>();
  /** Each instance's throttled S3 link, when the latency model throttles S3. */
  private readonly links = new Map<string, Promise<ThrottledLink>>();
  private readonly latency: LatencyModel;
  private registryLock: Promise<unknown> = Promise.resolve();

  constructor(options: LocalComputeOptions = {}) {
    this.options = options;
    this.root = resolve(options.root ?? '.runctl');
    this.latency = options.latency ?? latencyModel('instant');
    if (options.onStateChange !== undefined) this.listeners.add(options.onStateChange);
  }

  /** Adds a lifecycle listener; returns a function that removes it. */
  onStateChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The sandbox directory of an instance (its `/`, as RUNCTL_INSTANCE_ROOT). */
  sandbox(instanceId: string): string {
    return join(this.instancesDir(), instanceId);
  }

  async launch(request: LaunchRequest): Promise<LaunchedInstance> {
    const token = request.rank === undefined ? `${request.runId}-${request.attempt}` : `${request.runId}-${request.attempt}-r${request.rank}`;
    const [record] = await this.launchRecords(request, token, 1, () => request.rank);
    if (record === undefined) throw new NotFoundError(`The local launch of client token ${token} recorded no instance`);
    return launchedOf(record);
  }

  /**
   * `count` local instances of one (type, zone, market) try, all or none, as EC2 launches a fleet
   * with MinCount = MaxCount: the capacity simulator answers once for the whole try. A repeated
   * call returns the fleet of the first, in rank order; if a node of it is gone, the survivors are
   * terminated and Instance.Lost is thrown, as Ec2Compute does (the attempt's token would
   * replay the dead node).
   */
  async launchNodes(request: LaunchNodesRequest): Promise<LaunchedInstance[]> {
    const { count } = request;
    if (!Number.isInteger(count) || count < 1) {
      throw new RunInvalidError(`A fleet of ${count} nodes cannot be launched`, [{ path: 'nodes', message: 'must be a whole number of at least 1' }]);
    }
    const token = `${request.runId}-${request.attempt}-n${count}`;
    const records = await this.launchRecords(request, token, count, (index) => index);
    const current = await Promise.all(records.map((r) => this.currentRecord(r.instanceId)));
    const alive = current.filter((r): r is InstanceRecord => r !== undefined && (r.state === 'pending' || r.state === 'running'));
    if (alive.length < count) {
      await Promise.all(alive.map((r) => this.terminate(r.instanceId)));
      const lost = records.filter((r) => !alive.some((a) => a.instanceId === r.instanceId)).map((r) => `rank ${r.rank ?? '?'} (${r.instanceId})`);
      throw new InstanceLostError(
        `Run ${request.runId} attempt ${request.attempt} lost ${lost.join(', ')} before its launch returned; the ` +
          `${alive.length} surviving nodes were terminated, and a new attempt launches the fleet`,
      );
    }
    return alive.map(launchedOf);
  }

  /** The instances of a client token: those of an earlier call, or `count` new ones (in rank order, `rankOf` their launch index). */
  private async launchRecords(
    request: LaunchRequest | LaunchNodesRequest,
    clientToken: string,
    count: number,
    rankOf: (index: number) => number | undefined,
  ): Promise<InstanceRecord[]> {
    if (request.instanceTypes.length === 0) {
      throw new RunInvalidError('No instance type was given', [{ path: 'instance.types', message: 'must not be empty' }]);
    }
    const zones = this.zonesFor(request.availabilityZone);
    const markets = request.spot ? (request.onDemandFallback ? [true, false] : [true]) : [false];

    const created = await this.updateRegistry((registry) => {
      // EC2 answers a repeated client token with the instances of the first call, whatever their state.
      const existing = registry.instances.filter((i) => i.clientToken === clientToken);
      if (existing.length > 0) return { records: existing.sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0)), isNew: false };

      const misses: CapacityMiss[] = [];
      for (const spot of markets) {
        for (const instanceType of request.instanceTypes) {
          for (const zone of zones) {
            const answer = this.options.capacity?.(instanceType, zone, spot, count) ?? 'ok';
            if (answer !== 'ok') {
              misses.push({ instanceType, spot, code: answer });
              continue;
            }
            const now = this.now();
            const runningAt = now.getTime() + this.bootMs();
            const records = Array.from({ length: count }, (_, index): InstanceRecord => {
              const nodeRank = rankOf(index);
              return {
                instanceId: `i-local${randomBytes(4).toString('hex')}`,
                clientToken,
                runId: request.runId,
                attempt: request.attempt,
                ...(nodeRank === undefined ? {} : { rank: nodeRank }),
                instanceType,
                availabilityZone: zone,
                spot,
                launchedAt: now.toISOString(),
                runningAt: new Date(runningAt).toISOString(),
                onlineAt: new Date(runningAt + this.latency.ssmOnlineMs).toISOString(),
                state: 'pending',
                tags: {
                  ...request.tags,
                  'runctl:run': request.runId,
                  'runctl:attempt': String(request.attempt),
                  [STACK_TAG]: this.stack(),
                  ...(nodeRank === undefined ? {} : { 'runctl:rank': String(nodeRank) }),
                },
                misses,
              };
            });
            registry.instances.push(...records);
            return { records, isNew: true };
          }
        }
      }
      const tried = misses.map((m) => `${m.instanceType} ${m.spot ? 'spot' : 'on-demand'} in ${zones.join('/')} (${m.code})`);
      const what = count === 1 ? '' : ` (${count} nodes at once)`;
      throw new CapacityUnavailableError(
        `No capacity for run ${request.runId} attempt ${request.attempt}${what}; tried ${[...new Set(tried)].join(', ')}`,
      );
    });

    const { records, isNew } = created;
    if (isNew) {
      for (const record of records) await this.boot(record);
    }
    return records;
  }

  /** Makes a new instance's sandbox and schedules its move to running. */
  private async boot(record: InstanceRecord): Promise<void> {
    await mkdir(join(this.sandbox(record.instanceId), 'commands'), { recursive: true });
    this.emit(record.instanceId, 'pending');
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.currentRecord(record.instanceId).catch((error: unknown) => {
        console.error(`local compute: booting ${record.instanceId} failed`, error);
      });
    }, this.bootMs());
    timer.unref();
    this.timers.add(timer);
  }

  async readiness(instanceId: string): Promise<InstanceReadiness> {
    const record = await this.currentRecord(instanceId);
    if (record === undefined) return { state: 'gone', ready: false, agentOnline: false };
    const running = record.state === 'running';
    const online = running && this.agentOnline(record);
    return { state: record.state, ready: online, agentOnline: online };
  }

  /** The SSM agent registers some time after EC2 says running (the latency model's ssmOnlineMs). */
  private agentOnline(record: InstanceRecord): boolean {
    return record.onlineAt === undefined || Date.parse(record.onlineAt) <= this.now().getTime();
  }

  async instanceStates(instanceIds: readonly string[]): Promise<Map<string, InstanceLifecycleState>> {
    const records = await Promise.all(instanceIds.map(async (id) => [id, await this.currentRecord(id)] as const));
    return new Map(records.map(([id, record]) => [id, record?.state ?? 'gone']));
  }

  /** Type, zone and state of an instance, or undefined when it never existed (for the metadata service). */
  async describe(
    instanceId: string,
  ): Promise<{ instanceType: string; availabilityZone: string; state: InstanceRecord['state']; spot: boolean } | undefined> {
    const record = await this.currentRecord(instanceId);
    if (record === undefined) return undefined;
    return { instanceType: record.instanceType, availabilityZone: record.availabilityZone, state: record.state, spot: record.spot };
  }

  /** Kept nodes now serve `attempt`: their record and `runctl:attempt` tag say so, as CreateTags does on EC2. */
  async tagAttempt(instanceIds: readonly string[], attempt: number): Promise<void> {
    const wanted = new Set(instanceIds);
    await this.updateRegistry((registry) => {
      for (const record of registry.instances) {
        if (!wanted.has(record.instanceId)) continue;
        record.attempt = attempt;
        record.tags = { ...record.tags, 'runctl:attempt': String(attempt) };
      }
    });
  }

  async terminate(instanceId: string): Promise<void> {
    await this.stop(instanceId, 'SIGTERM');
  }

  /** Ends an instance abruptly (SIGKILL, no grace), as a spot reclaim or a host failure does. */
  async kill(instanceId: string): Promise<void> {
    await this.stop(instanceId, 'SIGKILL');
  }

  async sendCommand(
    instanceId: string,
    script: string,
    options: { timeoutSeconds?: number; comment?: string } = {},
  ): Promise<string> {
    const record = await this.currentRecord(instanceId);
    if (record?.state !== 'running' || !this.agentOnline(record)) {
      const state = record?.state === 'running' ? 'running, its SSM agent not online yet' : (record?.state ?? 'unknown');
      throw new InstanceNotReadyError(`SSM cannot reach instance ${instanceId}: it is ${state}, not running with its agent online`);
    }
    const commandId = randomUUID();
    const sandbox = this.sandbox(instanceId);
    const dir = join(sandbox, 'commands', commandId);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'script'), script, { mode: 0o600 });
    if (options.comment !== undefined) await writeFile(join(dir, 'comment'), options.comment.slice(0, 100));
    // SSM's executionTimeout: 1 hour unless asked otherwise.
    const timeoutSeconds = Math.max(1, Math.ceil(options.timeoutSeconds ?? 3600));

    const s3 = await this.s3Endpoint(instanceId);
    const child = spawn('bash', ['-c', COMMAND_WRAPPER, 'runctl-command', script, dir, String(timeoutSeconds)], {
      cwd: sandbox,
      env: this.instanceEnv(instanceId, s3),
      // Its own session and process group, as SSM runs each command; the control plane can
      // restart without taking the command (or the agent it starts) down with it.
      detached: true,
      stdio: 'ignore',
    });
    await new Promise<void>((resolveSpawn, reject) => {
      child.once('spawn', resolveSpawn);
      child.once('error', reject);
    });
    await writeFile(join(dir, 'pid'), String(child.pid));
    child.unref();
    return commandId;
  }

  async commandResult(instanceId: string, commandId: string): Promise<CommandResult> {
    const dir = join(this.sandbox(instanceId), 'commands', commandId);
    if (!/^[0-9a-f-]{36}$/.test(commandId) || !(await exists(dir))) {
      throw new NotFoundError(`Command ${commandId} was never sent to instance ${instanceId}`);
    }
    // The exit code first: once it is there, the output files are complete (read the other way
    // round, a command ending between the reads would report Success with output missing).
    const exit = await readOptional(join(dir, 'exit'));
    const stdout = await readHead(join(dir, 'stdout'));
    const stderr = await readHead(join(dir, 'stderr'));
    if (exit !== undefined) {
      const exitCode = Number(exit.trim());
      if (await exists(join(dir, 'timed-out'))) return { status: 'TimedOut', exitCode, stdout, stderr };
      return { status: exitCode === 0 ? 'Success' : 'Failed', exitCode, stdout, stderr };
    }
    const pid = Number(await readOptional(join(dir, 'pid')));
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) return { status: 'InProgress', stdout, stderr };
    // No exit code and no process: the instance died under the command (or the wrapper was killed).
    if ((await readOptional(join(dir, 'exit'))) === undefined) return { status: 'Failed', stdout, stderr };
    return this.commandResult(instanceId, commandId);
  }

  /** Every instance ever launched for `runId`, terminated ones too, in launch order: what a run cost in launches. */
  async launchedFor(runId: string): Promise<{ instanceId: string; attempt: number; rank?: number; clientToken: string }[]> {
    const registry = await this.readRegistry();
    return registry.instances
      .filter((i) => i.runId === runId)
      .sort((a, b) => a.launchedAt.localeCompare(b.launchedAt))
      .map((i) => ({ instanceId: i.instanceId, attempt: i.attempt, ...(i.rank === undefined ? {} : { rank: i.rank }), clientToken: i.clientToken }));
  }

  async listTaggedInstances(): Promise<TaggedInstance[]> {
    const registry = await this.readRegistry();
    const ids = registry.instances
      .filter((i) => i.state !== 'terminated' && i.tags[STACK_TAG] === this.stack())
      .map((i) => i.instanceId);
    const records = await Promise.all(ids.map((id) => this.currentRecord(id)));
    return records.flatMap((record) =>
      record === undefined || record.state === 'terminated'
        ? []
        : [
            {
              instanceId: record.instanceId,
              runId: record.runId,
              attempt: record.attempt,
              state: record.state,
              launchedAt: record.launchedAt,
              instanceType: record.instanceType,
              spot: record.spot,
              ...(record.rank === undefined ? {} : { rank: record.rank }),
            },
          ],
    );
  }

  private stack(): string {
    return this.options.stack ?? LOCAL_STACK;
  }

  /** Stops the boot timers and closes the S3 links; instances and their processes are left as they are. */
  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const link of this.links.values()) void link.then((l) => l.close()).catch(() => undefined);
    this.links.clear();
  }

  /**
   * The S3 endpoint an instance's commands use: the shared one, or under a throttling latency
   * model the instance's own link (made on its first command, closed when it terminates). A
   * link does not outlive this object: after a control-plane restart an agent started before it
   * loses its S3 endpoint, so the throttled profiles are for benches, not for restart tests.
   */
  private s3Endpoint(instanceId: string): Promise<string | undefined> {
    const shared = this.options.endpoints?.s3;
    if (shared === undefined || !throttlesS3(this.latency)) return Promise.resolve(shared);
    let link = this.links.get(instanceId);
    if (link === undefined) {
      link = ThrottledLink.open(shared, this.latency);
      this.links.set(instanceId, link);
    }
    return link.then((l) => l.url);
  }

  private stop(instanceId: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const inFlight = this.stopping.get(instanceId);
    if (inFlight !== undefined) return inFlight;
    const stopping = this.runStop(instanceId, signal).finally(() => this.stopping.delete(instanceId));
    this.stopping.set(instanceId, stopping);
    return stopping;
  }

  private async runStop(instanceId: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const before = await this.setState(instanceId, 'shutting-down', (state) => state !== 'terminated');
    if (before === undefined) return; // unknown: already gone, which is success
    if (before.changed) this.emit(instanceId, 'shutting-down');
    else if (before.record.state === 'terminated') return;
    await terminateMarked(INSTANCE_MARKER, instanceId, {
      graceMs: signal === 'SIGKILL' ? 0 : (this.options.terminateGraceMs ?? 2000),
      firstSignal: signal,
    });
    await this.removeContainers(before.record);
    const after = await this.setState(instanceId, 'terminated', (state) => state !== 'terminated');
    const link = this.links.get(instanceId);
    this.links.delete(instanceId);
    if (link !== undefined) await link.then((l) => l.close()).catch(() => undefined);
    if (after?.changed) this.emit(instanceId, 'terminated');
  }

  /** The record with a due boot applied (pending → running, announced once). */
  private async currentRecord(instanceId: string): Promise<InstanceRecord | undefined> {
    const now = this.now().getTime();
    const result = await this.setState(
      instanceId,
      'running',
      (state, record) => state === 'pending' && Date.parse(record.runningAt) <= now,
    );
    if (result?.changed) this.emit(instanceId, 'running');
    return result?.record;
  }

  /** Moves an instance to `state` when `when` holds; undefined for an unknown instance. */
  private setState(
    instanceId: string,
    state: InstanceRecord['state'],
    when: (current: InstanceRecord['state'], record: InstanceRecord) => boolean,
  ): Promise<{ record: InstanceRecord; changed: boolean } | undefined> {
    return this.updateRegistry((registry) => {
      const record = registry.instances.find((i) => i.instanceId === instanceId);
      if (record === undefined) return undefined;
      if (!when(record.state, record)) return { record, changed: false };
      record.state = state;
      return { record, changed: true };
    });
  }

  /**
   * Removes the training container of the instance's attempt (named as the agent names it), if
   * any, now and again a little later: a `docker run` killed while the engine was still creating
   * the container leaves it "Created" after this first removal found nothing.
   */
  private async removeContainers(record: InstanceRecord): Promise<void> {
    const docker = this.options.docker;
    if (docker === undefined) return;
    const name = `runctl-${record.runId}-${record.attempt}`;
    const remove = () =>
      new Promise<void>((resolveRemoval) => {
        // "No such container" is the common answer (no container, or --rm removed it already).
        execFile('docker', ['rm', '--force', name], { env: { ...process.env, DOCKER_HOST: docker.host }, timeout: 60_000 }, () => resolveRemoval());
      });
    await remove();
    for (const delayMs of CONTAINER_SWEEPS_MS) setTimeout(() => void remove(), delayMs).unref();
  }

  private emit(instanceId: string, state: InstanceLifecycleState): void {
    for (const listener of this.listeners) {
      // Not awaited: a listener may itself terminate this instance, which waits for this change.
      Promise.resolve()
        .then(() => listener(instanceId, state))
        .catch((error: unknown) => console.error(`local compute: state listener failed for ${instanceId} ${state}`, error));
    }
  }

  private instanceEnv(instanceId: string, s3Endpoint: string | undefined): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    // The developer's own AWS settings (profiles, real credentials) must never reach a local instance.
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith('AWS_') && !key.startsWith('RUNCTL_')) env[key] = value;
    }
    const sandbox = this.sandbox(instanceId);
    const region = this.options.region ?? 'us-east-1';
    const credentials = this.options.credentials ?? { accessKeyId: 'test', secretAccessKey: 'test' };
    const endpoints = this.options.endpoints ?? {};
    Object.assign(env, {
      PATH: instancePath(process.env.PATH),
      RUNCTL_INSTANCE_ROOT: sandbox,
      [INSTANCE_MARKER]: instanceId,
      RUNCTL_IMDS_ENDPOINT: this.options.imdsEndpoint?.(instanceId) ?? 'off',
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_DEFAULT_REGION: region,
      AWS_REGION: region,
      // No config or credentials file of the developer's, and no credential lookup on 169.254.169.254.
      AWS_CONFIG_FILE: join(sandbox, '.aws', 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(sandbox, '.aws', 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      // The instance's own docker login, never the developer's ~/.docker/config.json.
      DOCKER_CONFIG: join(sandbox, '.docker'),
    });
    if (this.options.docker !== undefined) {
      env.DOCKER_HOST = this.options.docker.host;
      if (this.options.docker.ecrEndpoint !== undefined) env.AWS_ENDPOINT_URL_ECR = this.options.docker.ecrEndpoint;
    }
    if (s3Endpoint !== undefined) env.AWS_ENDPOINT_URL_S3 = s3Endpoint;
    if (endpoints.dynamodb !== undefined) env.AWS_ENDPOINT_URL_DYNAMODB = endpoints.dynamodb;
    if (endpoints.sfn !== undefined) env.AWS_ENDPOINT_URL_SFN = endpoints.sfn;
    if (endpoints.ssm !== undefined) env.AWS_ENDPOINT_URL_SSM = endpoints.ssm;
    if (endpoints.secretsManager !== undefined) env.AWS_ENDPOINT_URL_SECRETS_MANAGER = endpoints.secretsManager;
    return env;
  }

  private zonesFor(pinned: string | undefined): string[] {
    const zones = [...(this.options.zones ?? [LOCAL_ZONE])];
    if (pinned === undefined) return zones;
    if (!zones.includes(pinned)) {
      throw new PrecheckFailedError(`The run is pinned to ${pinned}, but the local backend only has ${zones.join(', ')}`);
    }
    return [pinned];
  }

  private bootMs(): number {
    return this.options.bootMs ?? this.latency.launchMs;
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private instancesDir(): string {
    return join(this.root, 'instances');
  }

  private registryFile(): string {
    return join(this.instancesDir(), 'registry.json');
  }

  private async readRegistry(): Promise<Registry> {
    const text = await readOptional(this.registryFile());
    if (text === undefined) return { instances: [] };
    return RegistrySchema.parse(JSON.parse(text));
  }

  /** Read-modify-write of the registry, one at a time within this process; written by rename. */
  private updateRegistry<T>(change: (registry: Registry) => T): Promise<T> {
    const run = this.registryLock.then(async () => {
      const registry = await this.readRegistry();
      const before = JSON.stringify(registry);
      const result = change(registry);
      if (JSON.stringify(registry) !== before) {
        await mkdir(this.instancesDir(), { recursive: true });
        // Unique per write: two LocalCompute objects on one root (a restart in the same process) may write at once.
        const tmp = `${this.registryFile()}.${process.pid}.${randomUUID()}.tmp`;
        await writeFile(tmp, JSON.stringify(registry, null, 2));
        await rename(tmp, this.registryFile());
      }
      return result;
    });
    this.registryLock = run.catch(() => undefined);
    return run;
  }
}

/** Every local instance is on loopback: its private address is 127.0.0.1. */
const LOOPBACK = '127.0.0.1';

function launchedOf(record: InstanceRecord): LaunchedInstance {
  return {
    instanceId: record.instanceId,
    instanceType: record.instanceType,
    availabilityZone: record.availabilityZone,
    spot: record.spot,
    launchedAt: record.launchedAt,
    misses: [...record.misses],
    privateIp: LOOPBACK,
    ...(record.rank === undefined ? {} : { rank: record.rank }),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The first MAX_OUTPUT_CHARS characters of a file without reading all of a long log. */
async function readHead(path: string): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    // A UTF-8 character is at most 4 bytes.
    const buffer = Buffer.alloc(MAX_OUTPUT_CHARS * 4);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return [...buffer.subarray(0, bytesRead).toString('utf8')].slice(0, MAX_OUTPUT_CHARS).join('');
  } finally {
    await handle.close();
  }
}
