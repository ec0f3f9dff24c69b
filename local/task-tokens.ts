import { randomBytes } from 'node:crypto';
import { InvalidTokenError, TaskTimedOutError, type TaskCallbackHandler } from './task-callback-server';

/**
 * Task tokens of the local backend: what Step Functions does for a `.waitForTaskToken` task.
 * A token is issued when the task starts; the task ends when `success` or `failure` arrives
 * (from the agent through local/task-callback-server.ts, or from a test), or when no heartbeat
 * came within HeartbeatSeconds (`States.HeartbeatTimeout`) or the task ran past TimeoutSeconds
 * (`States.Timeout`). Like AWS, a callback for a finished task is `TaskTimedOut` and one for a
 * token never issued is `InvalidToken`.
 */

/** The callbacks the local callback server and tests deliver; the same three as the AWS API. */
export type TaskTokenRegistry = TaskCallbackHandler;

/** How a waiting task ended badly; `name` is the ASL error name, `message` the cause. */
export class TaskFailedError extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

export interface TaskWaitLimits {
  /** Fail with States.HeartbeatTimeout when no heartbeat (or outcome) comes for this long. */
  heartbeatMs?: number;
  /** Fail with States.Timeout when no outcome comes for this long. */
  timeoutMs?: number;
}

export interface IssuedTask {
  token: string;
  /** Resolves with the success output, rejects with a TaskFailedError. */
  outcome: Promise<unknown>;
}

interface Pending {
  resolve(output: unknown): void;
  reject(error: TaskFailedError): void;
  heartbeatMs?: number;
  heartbeatTimer?: NodeJS.Timeout;
  timeoutTimer?: NodeJS.Timeout;
  label: string;
}

/** Node's timers overflow (and fire at once) above 2^31-1 ms; longer limits simply never fire. */
const MAX_TIMER_MS = 2_147_483_647;

export class TaskTokens implements TaskTokenRegistry {
  private readonly pending = new Map<string, Pending>();
  private readonly finished = new Set<string>();
  private readonly issuedListeners: Array<(token: string, label: string) => void> = [];

  /** Starts waiting on a new token; `label` names the task in errors (e.g. the state name). */
  issue(label: string, limits: TaskWaitLimits = {}): IssuedTask {
    const token = `local-${randomBytes(48).toString('base64url')}`;
    const outcome = new Promise<unknown>((resolve, reject) => {
      const entry: Pending = { resolve, reject, heartbeatMs: limits.heartbeatMs, label };
      this.pending.set(token, entry);
      if (limits.timeoutMs !== undefined && limits.timeoutMs <= MAX_TIMER_MS) {
        entry.timeoutTimer = setTimeout(
          () => this.settle(token, (p) => p.reject(new TaskFailedError('States.Timeout', `${label} ran past its TimeoutSeconds`))),
          limits.timeoutMs,
        );
      }
      this.armHeartbeat(token, entry);
    });
    for (const listener of this.issuedListeners) listener(token, label);
    return { token, outcome };
  }

  /** Calls `listener` for every token issued from now on. */
  onIssued(listener: (token: string, label: string) => void): void {
    this.issuedListeners.push(listener);
  }

  /** Tokens still waited for. */
  waiting(): string[] {
    return [...this.pending.keys()];
  }

  success(token: string, output: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(output);
    } catch (error) {
      throw Object.assign(new Error(`output is not JSON: ${String(error)}`), { name: 'InvalidOutput' });
    }
    this.settle(token, (p) => p.resolve(parsed));
  }

  failure(token: string, error: string | undefined, cause: string | undefined): void {
    this.settle(token, (p) => p.reject(new TaskFailedError(error ?? 'States.TaskFailed', cause ?? '')));
  }

  heartbeat(token: string): void {
    const entry = this.lookup(token);
    this.armHeartbeat(token, entry);
  }

  /** Abandons a wait (the execution ended or was aborted); later callbacks get TaskTimedOut. */
  cancel(token: string): void {
    const entry = this.pending.get(token);
    if (entry === undefined) return;
    this.clearTimers(entry);
    this.pending.delete(token);
    this.finished.add(token);
  }

  private armHeartbeat(token: string, entry: Pending): void {
    if (entry.heartbeatTimer !== undefined) clearTimeout(entry.heartbeatTimer);
    if (entry.heartbeatMs === undefined || entry.heartbeatMs > MAX_TIMER_MS) return;
    entry.heartbeatTimer = setTimeout(
      () =>
        this.settle(token, (p) =>
          p.reject(new TaskFailedError('States.HeartbeatTimeout', `${entry.label} had no heartbeat for ${entry.heartbeatMs} ms`)),
        ),
      entry.heartbeatMs,
    );
  }

  private lookup(token: string): Pending {
    const entry = this.pending.get(token);
    if (entry !== undefined) return entry;
    if (this.finished.has(token)) throw new TaskTimedOutError('Task Timed Out: the task of this token has already ended');
    throw new InvalidTokenError('Invalid token');
  }

  private settle(token: string, action: (entry: Pending) => void): void {
    const entry = this.lookup(token);
    this.clearTimers(entry);
    this.pending.delete(token);
    this.finished.add(token);
    action(entry);
  }

  private clearTimers(entry: Pending): void {
    if (entry.heartbeatTimer !== undefined) clearTimeout(entry.heartbeatTimer);
    if (entry.timeoutTimer !== undefined) clearTimeout(entry.timeoutTimer);
  }
}
