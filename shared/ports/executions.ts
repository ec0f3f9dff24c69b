/** Step Functions executions of the train-run machine, as the API and event handlers see them. */

export interface StartedExecution {
  executionArn: string;
  /** True when an execution of that name already existed (a retried submit). */
  alreadyStarted: boolean;
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE';

export interface Executions {
  /** Starts the execution named `runId` with `input`; idempotent on the name. */
  start(runId: string, input: unknown): Promise<StartedExecution>;
  /** ARNs of the machine's executions that are running now (the reconciler's one listing per pass). */
  running(): Promise<Set<string>>;
  /** Status of an execution; undefined when it does not exist. */
  status(executionArn: string): Promise<ExecutionStatus | undefined>;
  /** Fails a waiting task; false when the token is stale (task already closed or timed out). */
  failTask(taskToken: string, error: string, cause: string): Promise<boolean>;
}
