import type { Compute, LaunchNodesRequest, LaunchRequest, LaunchedInstance } from '../shared/ports/compute';
import type { ExecutionStatus, Executions, StartedExecution } from '../shared/ports/executions';
import type { TaskCallbacks } from '../shared/ports/run-credentials';
import { NODES_TAG, type InstanceRun, type InstanceTags } from '../shared/ports/instance-tags';
import type { ExecutionOutcome, LocalExecution } from './state-machine-runner';
import type { TaskCallbackHandler } from './task-callback-server';
import type { TaskTokens } from './task-tokens';

/**
 * The two ports whose AWS adapters talk to services the local backend replaces in process:
 * Step Functions executions (the runner in this process) and the instance tags lookup (the
 * local compute's registry). Plus the token aliases that let an agent started before a
 * control-plane restart call back the execution that resumed its run.
 */

/** Starts executions of the train-run machine; `resume` picks the entry for a run found live at start. */
export type StartExecution = (runId: string, input: unknown) => LocalExecution;

/** Executions in this process: StartExecution, DescribeExecution and the task callbacks as Step Functions answers them. */
export class LocalExecutions implements Executions, TaskCallbacks {
  private readonly byName = new Map<string, { execution: LocalExecution; outcome?: ExecutionOutcome }>();

  constructor(
    private readonly startExecution: StartExecution,
    private readonly tokens: TaskCallbackHandler,
  ) {}

  async start(runId: string, input: unknown): Promise<StartedExecution> {
    const known = this.byName.get(runId);
    // Step Functions refuses a second execution of a name (ExecutionAlreadyExists): the submit treats it as started.
    if (known !== undefined) return { executionArn: known.execution.executionArn, alreadyStarted: true };
    this.track(this.startExecution(runId, input));
    const tracked = this.byName.get(runId);
    if (tracked === undefined) throw new Error(`execution ${runId} was not recorded`);
    return { executionArn: tracked.execution.executionArn, alreadyStarted: false };
  }

  /** Records an execution started elsewhere in the runtime (a resumed run). */
  track(execution: LocalExecution): void {
    const entry: { execution: LocalExecution; outcome?: ExecutionOutcome } = { execution };
    this.byName.set(execution.name, entry);
    void execution.outcome.then((outcome) => {
      entry.outcome = outcome;
    });
  }

  async running(): Promise<Set<string>> {
    return new Set([...this.byName.values()].filter((e) => e.outcome === undefined).map((e) => e.execution.executionArn));
  }

  async status(executionArn: string): Promise<ExecutionStatus | undefined> {
    const entry = [...this.byName.values()].find((e) => e.execution.executionArn === executionArn);
    if (entry === undefined) return undefined;
    if (entry.outcome === undefined) return 'RUNNING';
    return entry.outcome.status === 'FAILED' ? 'FAILED' : entry.outcome.status;
  }

  async failTask(taskToken: string, error: string, cause: string): Promise<boolean> {
    return this.callback(() => this.tokens.failure(taskToken, error, cause));
  }

  async succeedTask(taskToken: string, output: string): Promise<boolean> {
    return this.callback(() => this.tokens.success(taskToken, output));
  }

  async heartbeatTask(taskToken: string): Promise<boolean> {
    return this.callback(() => this.tokens.heartbeat(taskToken));
  }

  private async callback(send: () => Promise<void> | void): Promise<boolean> {
    try {
      await send();
      return true;
    } catch (err) {
      // Closed already (a callback raced us, a timeout): as SfnExecutions, nothing left to answer.
      if (err instanceof Error && (err.name === 'TaskTimedOut' || err.name === 'InvalidToken')) return false;
      throw err;
    }
  }

  /** The execution of a run started in this process, if any. */
  execution(runId: string): LocalExecution | undefined {
    return this.byName.get(runId)?.execution;
  }

  /** Every execution started in this process. */
  all(): LocalExecution[] {
    return [...this.byName.values()].map((e) => e.execution);
  }
}

/**
 * Task tokens across a restart. On AWS the execution outlives any control-plane process; here it
 * lives in this process, so a resumed run gets a new execution and a new LaunchTraining token,
 * while its agent (which reads its token once, at start) still holds the old one. The runtime
 * maps the old token to the new one, so the agent's heartbeats and final callback reach the
 * execution that now waits for that attempt. Until the resumed runs are known (`open`), and
 * while a resumed wait has not issued its token yet, callbacks are held rather than answered
 * InvalidToken, which would make the agent give up its attempt.
 */
export class TokenAliases implements TaskCallbackHandler {
  private readonly aliases = new Map<string, string>();
  private readonly expected = new Map<string, { oldToken: string; issued: Promise<string>; resolve(token: string): void }>();
  private opened: () => void = () => undefined;
  private readonly ready: Promise<void>;

  constructor(
    private readonly tokens: TaskTokens,
    /** How long a callback for a resumed attempt waits for its new token. */
    private readonly holdMs = 30_000,
  ) {
    this.ready = new Promise<void>((resolve) => {
      this.opened = resolve;
    });
  }

  /** Announces that the next token issued for (runId, attempt) replaces `oldToken`. */
  expect(runId: string, attempt: number, oldToken: string): void {
    let resolve: (token: string) => void = () => undefined;
    const issued = new Promise<string>((r) => {
      resolve = r;
    });
    this.expected.set(`${runId}#${attempt}`, { oldToken, issued, resolve });
  }

  /** Every resumed run is announced: callbacks are served from now on. */
  open(): void {
    this.opened();
  }

  /** Called with each LaunchTraining payload: links an expected old token to the new one. */
  issued(runId: string, attempt: number, newToken: string): void {
    const key = `${runId}#${attempt}`;
    const entry = this.expected.get(key);
    if (entry === undefined) return;
    this.expected.delete(key);
    this.aliases.set(entry.oldToken, newToken);
    entry.resolve(newToken);
  }

  async resolve(token: string): Promise<string> {
    await this.ready;
    const alias = this.aliases.get(token);
    if (alias !== undefined) return alias;
    const pending = [...this.expected.values()].find((e) => e.oldToken === token);
    if (pending === undefined) return token;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(token), this.holdMs);
    });
    try {
      return await Promise.race([pending.issued, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async success(token: string, output: string): Promise<void> {
    this.tokens.success(await this.resolve(token), output);
  }

  async failure(token: string, error: string | undefined, cause: string | undefined): Promise<void> {
    this.tokens.failure(await this.resolve(token), error, cause);
  }

  async heartbeat(token: string): Promise<void> {
    this.tokens.heartbeat(await this.resolve(token));
  }
}

/**
 * The run tags of local instances, from the compute's registry, remembered at launch so the
 * state-change events of a terminated instance still find their run (EC2 keeps the tags of a
 * terminated instance readable for about an hour).
 */
export class LocalInstanceTags implements InstanceTags {
  private readonly known = new Map<string, InstanceRun>();

  constructor(private readonly compute: Pick<Compute, 'listTaggedInstances'>) {}

  remember(instanceId: string, run: InstanceRun): void {
    this.known.set(instanceId, run);
  }

  async runOf(instanceId: string): Promise<InstanceRun | undefined> {
    const known = this.known.get(instanceId);
    if (known !== undefined) return known;
    const found = (await this.compute.listTaggedInstances()).find((i) => i.instanceId === instanceId);
    if (found === undefined) return undefined;
    const run = { runId: found.runId, attempt: found.attempt };
    this.known.set(instanceId, run);
    return run;
  }

  /** A kept node now serves a later attempt (Compute.tagAttempt). */
  retag(instanceIds: readonly string[], attempt: number): void {
    for (const id of instanceIds) {
      const known = this.known.get(id);
      if (known !== undefined) this.known.set(id, { ...known, attempt });
    }
  }
}

/** The run tags a launch request puts on its instances, as the event handlers read them back. */
function runTagsOf(request: LaunchRequest): InstanceRun {
  const nodes = Number(request.tags[NODES_TAG]);
  return { runId: request.runId, attempt: request.attempt, ...(nodes > 1 ? { nodes } : {}) };
}

/** A compute port that tells `tags` about every instance it launches. */
export function rememberingLaunches(compute: Compute, tags: LocalInstanceTags): Compute {
  return {
    launch: async (request: LaunchRequest): Promise<LaunchedInstance> => {
      const launched = await compute.launch(request);
      tags.remember(launched.instanceId, runTagsOf(request));
      return launched;
    },
    launchNodes: async (request: LaunchNodesRequest): Promise<LaunchedInstance[]> => {
      const launched = await compute.launchNodes(request);
      for (const instance of launched) tags.remember(instance.instanceId, runTagsOf(request));
      return launched;
    },
    tagAttempt: async (ids, attempt) => {
      await compute.tagAttempt(ids, attempt);
      tags.retag(ids, attempt);
    },
    readiness: (id) => compute.readiness(id),
    instanceStates: (ids) => compute.instanceStates(ids),
    terminate: (id) => compute.terminate(id),
    sendCommand: (id, script, options) => compute.sendCommand(id, script, options),
    commandResult: (id, commandId) => compute.commandResult(id, commandId),
    listTaggedInstances: () => compute.listTaggedInstances(),
  };
}
