import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { ExecutionAbortedError, ExecutionError, StateMachine, type RunOptions, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { z } from 'zod';
import { logicalIdFromLocalArn, type AslDefinition } from './asl';
import { TaskTokens } from './task-tokens';

/**
 * Runs an ASL definition (loaded through local/asl.ts with `localLambdaArn`) in
 * aws-local-stepfunctions, the way Step Functions would run it on AWS:
 * - each Lambda task calls an in-process handler (bound by state name, by logical id, or by
 *   ARN), with the event and result JSON-serialised as Lambda would;
 * - `arn:aws:states:::lambda:invoke.waitForTaskToken` tasks get a fresh task token as
 *   `$$.Task.Token`, call the handler, then wait for success / failure / heartbeat delivered
 *   to a TaskTokens registry, enforcing HeartbeatSeconds and TimeoutSeconds(Path);
 * - the event log is kept, so callers can count state transitions.
 * The local backend and the state machine tests share it.
 */

/** A Lambda handler as the runtime calls it. */
export type LocalLambda = (event: unknown, context: Context) => unknown;

type Overrides = NonNullable<RunOptions['overrides']>;
type TaskOverride = NonNullable<Overrides['taskResourceLocalHandlers']>[string];
type JsonValue = Parameters<TaskOverride>[0];
type RunResult = ReturnType<StateMachine['run']>;
/** One entry of the execution's event log (StateEntered, StateRetried, ExecutionFailed, …). */
export type ExecutionEvent = RunResult['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

export interface StateMachineRunnerOptions {
  definition: AslDefinition;
  /** Handlers by Lambda logical id (`ValidateRunLambdaFunction`) or by ARN. */
  lambdas: Readonly<Record<string, LocalLambda>>;
  /** Handlers by state name; win over `lambdas` (a test's injected failure, say). */
  stateOverrides?: Readonly<Record<string, LocalLambda>>;
  /** Where task callbacks are delivered; one is created when not given. */
  tokens?: TaskTokens;
  /** Wait states and Retry pauses take 0 ms (tests). */
  fastWaits?: boolean;
  /** Wait state durations in ms, by state name (win over `fastWaits`). */
  waitOverridesMs?: Readonly<Record<string, number>>;
  /**
   * Shortens every Retry pause to `IntervalSeconds × retryIntervalScale` (no backoff, no jitter),
   * as `waitOverridesMs` shortens the Wait states: the local backend polls in milliseconds, so a
   * throttled call must not pause for the ASL's seconds. `fastWaits` wins (0 ms).
   */
  retryIntervalScale?: number;
  /** HeartbeatSeconds of waitForTaskToken states, in ms, by state name. */
  heartbeatOverridesMs?: Readonly<Record<string, number>>;
  /** Region and account of the execution ARNs. */
  region?: string;
  account?: string;
  stateMachineName?: string;
}

export type ExecutionOutcome =
  | { status: 'SUCCEEDED'; output: unknown }
  | { status: 'FAILED'; error: string; cause: string }
  | { status: 'ABORTED' };

export interface LocalExecution {
  name: string;
  executionArn: string;
  /** Settles when the execution ends; never rejects. */
  outcome: Promise<ExecutionOutcome>;
  /** The event log so far. */
  history: ExecutionEvent[];
  /** States entered so far (what Step Functions bills as state transitions), retries included. */
  transitions(): number;
  /** Names of the states entered, in order. */
  statesEntered(): string[];
  abort(): void;
}

/** Placeholder the context carries as `$$.Task.Token`; replaced with a real token per invocation. */
const TOKEN_PLACEHOLDER = '__runctl_local_task_token__';
/** Hidden Parameters key that carries a TimeoutSecondsPath value into the task override. */
const TIMEOUT_KEY = '__runctl_local_timeout_seconds';
/** aws-local-stepfunctions uses setTimeout for task timeouts; keep its timer below 2^31 ms. */
const ENGINE_MAX_TIMEOUT_SECONDS = 2_147_483;
const WAIT_FOR_TOKEN = /^arn:aws:states:::lambda:invoke\.waitForTaskToken$/;
const LAMBDA_INVOKE = /^arn:aws:states:::lambda:invoke$/;
/** A service integration that waits for its job (`startExecution.sync:2`, …). */
const SYNC_INTEGRATION = /^arn:aws:states:::[\w-]+:\w+\.sync(:2)?$/;

const TaskStateSchema = z.looseObject({
  Type: z.literal('Task'),
  Resource: z.string(),
  Parameters: z.record(z.string(), z.unknown()).optional(),
  HeartbeatSeconds: z.number().int().positive().optional(),
  TimeoutSeconds: z.number().int().positive().optional(),
  TimeoutSecondsPath: z.string().optional(),
});
const RetrierSchema = z.looseObject({ IntervalSeconds: z.number().positive().optional() });
type NestedState = { Type: string; Retry?: Array<z.infer<typeof RetrierSchema>>; ItemProcessor?: { States: Record<string, NestedState> }; Iterator?: { States: Record<string, NestedState> }; Branches?: Array<{ States: Record<string, NestedState> }> };
const NestedStateSchema: z.ZodType<NestedState> = z.lazy(() =>
  z.looseObject({
    Type: z.string(),
    Retry: z.array(RetrierSchema).optional(),
    ItemProcessor: z.looseObject({ States: z.record(z.string(), NestedStateSchema) }).optional(),
    Iterator: z.looseObject({ States: z.record(z.string(), NestedStateSchema) }).optional(),
    Branches: z.array(z.looseObject({ States: z.record(z.string(), NestedStateSchema) })).optional(),
  }),
);
const DefinitionSchema = z.looseObject({
  StartAt: z.string(),
  States: z.record(z.string(), NestedStateSchema),
});
/** The ASL's default IntervalSeconds of a retrier. */
const DEFAULT_RETRY_INTERVAL_SECONDS = 1;
const InvokeInputSchema = z.looseObject({ FunctionName: z.string(), Payload: z.unknown().optional() });
const TimeoutCarrierSchema = z.looseObject({ [TIMEOUT_KEY]: z.number().int().positive().optional() });

interface TaskBinding {
  stateName: string;
  mode: 'direct' | 'invoke' | 'token';
  heartbeatMs?: number;
  timeoutMs?: number;
}

/** Serialises like Lambda does: undefined fields vanish, dates become strings. */
function viaJson(value: unknown): JsonValue {
  const parsed: JsonValue = JSON.parse(JSON.stringify(value ?? null));
  return parsed;
}

function replaceToken(value: unknown, token: string): unknown {
  if (value === TOKEN_PLACEHOLDER) return token;
  if (Array.isArray(value)) return value.map((v) => replaceToken(v, token));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceToken(v, token)]));
  }
  return value;
}

function lambdaContext(functionArn: string, requestId: string): Context {
  const functionName = functionArn.split(':').at(-1) ?? functionArn;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: functionArn,
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${requestId}`,
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Binds the ASL's tasks to local handlers and starts executions of it. */
export class LocalStateMachine {
  readonly tokens: TaskTokens;
  private readonly machine: StateMachine;
  private readonly bindings = new Map<string, TaskBinding>();
  private readonly handlers = new Map<string, { arn: string; handler: LocalLambda }>();
  private readonly waitStates: string[] = [];
  /** IntervalSeconds of each retrier, by state name. */
  private readonly retryIntervals = new Map<string, number[]>();

  constructor(private readonly options: StateMachineRunnerOptions) {
    this.tokens = options.tokens ?? new TaskTokens();
    const definition = DefinitionSchema.parse(structuredClone(options.definition));
    this.bindStates(definition.States);
    const engineDefinition: StateMachineDefinition = JSON.parse(JSON.stringify(definition));
    this.machine = new StateMachine(engineDefinition, { validationOptions: { checkPaths: true, checkArn: true } });
  }

  /**
   * Binds the tasks of a States object, and of every Map's ItemProcessor (or Iterator) and
   * Parallel branch inside it: state names are unique across a whole definition, as on AWS.
   */
  private bindStates(states: Record<string, z.infer<typeof NestedStateSchema>>): void {
    for (const [stateName, raw] of Object.entries(states)) {
      const processor = raw.ItemProcessor ?? raw.Iterator;
      if (processor !== undefined) this.bindStates(processor.States);
      for (const branch of raw.Branches ?? []) this.bindStates(branch.States);
      if (raw.Type === 'Wait') this.waitStates.push(stateName);
      if (raw.Retry !== undefined) {
        this.retryIntervals.set(
          stateName,
          raw.Retry.map((retrier) => retrier.IntervalSeconds ?? DEFAULT_RETRY_INTERVAL_SECONDS),
        );
      }
      if (raw.Type !== 'Task') continue;
      const state = TaskStateSchema.parse(raw);
      this.bindTask(stateName, state, states);
    }
  }

  /** Starts an execution named `name` (the run id, for train-run) with `input`. */
  start(input: unknown, name: string = randomUUID()): LocalExecution {
    const region = this.options.region ?? 'us-east-1';
    const account = this.options.account ?? '000000000000';
    const machineName = this.options.stateMachineName ?? 'local';
    const executionArn = `arn:aws:states:${region}:${account}:execution:${machineName}:${name}`;
    const issued = new Set<string>();
    const overrides = this.overrides(issued);
    const run = this.machine.run(viaJson(input), {
      overrides,
      context: {
        Execution: { Id: executionArn, Name: name },
        StateMachine: { Id: `arn:aws:states:${region}:${account}:stateMachine:${machineName}`, Name: machineName },
        Task: { Token: TOKEN_PLACEHOLDER },
      },
    });
    const history: ExecutionEvent[] = [];
    const collected = (async () => {
      for await (const event of run.eventLogs) history.push(event);
    })();
    const outcome = run.result
      .then((output): ExecutionOutcome => ({ status: 'SUCCEEDED', output }))
      .catch((error: unknown): ExecutionOutcome => {
        if (error instanceof ExecutionAbortedError) return { status: 'ABORTED' };
        const cause = error instanceof ExecutionError && error.cause instanceof Error ? error.cause : error;
        if (cause instanceof Error) return { status: 'FAILED', error: cause.name, cause: cause.message };
        return { status: 'FAILED', error: 'States.Runtime', cause: String(cause) };
      })
      .then(async (result) => {
        // A wait the execution no longer has (it failed or was aborted meanwhile) must not linger.
        for (const token of issued) this.tokens.cancel(token);
        await collected;
        return result;
      });
    return {
      name,
      executionArn,
      outcome,
      history,
      transitions: () => history.filter((e) => e.type === 'StateEntered' || e.type === 'StateRetried').length,
      statesEntered: () => history.flatMap((e) => (e.type === 'StateEntered' ? [e.state.name] : [])),
      abort: run.abort,
    };
  }

  private bindTask(stateName: string, state: z.infer<typeof TaskStateSchema>, states: Record<string, unknown>): void {
    if (WAIT_FOR_TOKEN.test(state.Resource)) {
      const binding: TaskBinding = {
        stateName,
        mode: 'token',
        heartbeatMs: this.options.heartbeatOverridesMs?.[stateName] ?? (state.HeartbeatSeconds ? state.HeartbeatSeconds * 1000 : undefined),
        timeoutMs: state.TimeoutSeconds ? state.TimeoutSeconds * 1000 : undefined,
      };
      // The engine enforces TimeoutSeconds with one setTimeout (which overflows past ~24 days);
      // the runner enforces it instead, reading a TimeoutSecondsPath through a hidden parameter.
      const rewritten: Record<string, unknown> = { ...state, TimeoutSeconds: ENGINE_MAX_TIMEOUT_SECONDS };
      delete rewritten.TimeoutSecondsPath;
      delete rewritten.HeartbeatSeconds;
      if (state.TimeoutSecondsPath !== undefined) {
        rewritten.Parameters = { ...state.Parameters, [`${TIMEOUT_KEY}.$`]: state.TimeoutSecondsPath };
      }
      states[stateName] = rewritten;
      this.bindings.set(stateName, binding);
      const functionName = z.string().safeParse(state.Parameters?.FunctionName);
      if (functionName.success) this.requireHandler(stateName, functionName.data);
      return;
    }
    if (SYNC_INTEGRATION.test(state.Resource) && state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) {
      // Step Functions lets a .sync task without a timeout wait as long as the execution may run
      // (a trial trains for hours); the engine would give up after its own default of 60 s.
      states[stateName] = { ...state, TimeoutSeconds: ENGINE_MAX_TIMEOUT_SECONDS };
    }
    const mode = LAMBDA_INVOKE.test(state.Resource) ? 'invoke' : 'direct';
    if (mode === 'direct') this.requireHandler(stateName, state.Resource);
    else {
      const functionName = z.string().safeParse(state.Parameters?.FunctionName);
      if (functionName.success) this.requireHandler(stateName, functionName.data);
    }
    this.bindings.set(stateName, { stateName, mode });
  }

  private requireHandler(stateName: string, arn: string): void {
    const byState = this.options.stateOverrides?.[stateName];
    const logicalId = logicalIdFromLocalArn(arn);
    const handler = byState ?? this.options.lambdas[arn] ?? (logicalId === undefined ? undefined : this.options.lambdas[logicalId]);
    if (handler === undefined) {
      throw new Error(`No local handler for state ${stateName} (function ${logicalId ?? arn})`);
    }
    this.handlers.set(stateName, { arn, handler });
  }

  private async invoke(stateName: string, event: unknown): Promise<JsonValue> {
    const bound = this.handlers.get(stateName);
    if (bound === undefined) throw new Error(`No local handler bound for state ${stateName}`);
    const result = await bound.handler(viaJson(event), lambdaContext(bound.arn, randomUUID()));
    return viaJson(result);
  }

  private overrides(issued: Set<string>): Overrides {
    const taskResourceLocalHandlers: Record<string, TaskOverride> = {};
    for (const binding of this.bindings.values()) {
      const { stateName } = binding;
      taskResourceLocalHandlers[stateName] = async (input: JsonValue): Promise<JsonValue> => {
        if (binding.mode === 'direct') return this.invoke(stateName, input);
        const request = InvokeInputSchema.parse(input);
        if (binding.mode === 'invoke') {
          return viaJson({ StatusCode: 200, ExecutedVersion: '$LATEST', Payload: await this.invoke(stateName, request.Payload) });
        }
        const carried = TimeoutCarrierSchema.parse(input)[TIMEOUT_KEY];
        const timeoutMs = carried !== undefined ? carried * 1000 : binding.timeoutMs;
        const task = this.tokens.issue(stateName, { heartbeatMs: binding.heartbeatMs, timeoutMs });
        issued.add(task.token);
        // Handled before the handler runs: a callback may arrive while it is still running.
        task.outcome.catch(() => undefined);
        try {
          await this.invoke(stateName, replaceToken(request.Payload, task.token));
        } catch (error) {
          this.tokens.cancel(task.token);
          throw error;
        }
        return viaJson(await task.outcome);
      };
    }
    const waitTimeOverrides: Record<string, number> = {};
    if (this.options.fastWaits) for (const name of this.waitStates) waitTimeOverrides[name] = 0;
    Object.assign(waitTimeOverrides, this.options.waitOverridesMs);
    const retryIntervalOverrides: Record<string, number | number[]> = {};
    const scale = this.options.fastWaits ? 0 : this.options.retryIntervalScale;
    if (scale !== undefined) {
      for (const [name, intervals] of this.retryIntervals) {
        retryIntervalOverrides[name] = intervals.map((seconds) => Math.round(seconds * 1000 * scale));
      }
    }
    return { taskResourceLocalHandlers, waitTimeOverrides, retryIntervalOverrides };
  }
}
