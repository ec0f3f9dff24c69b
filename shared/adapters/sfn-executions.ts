import {
  DescribeExecutionCommand,
  paginateListExecutions,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  InvalidToken,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  TaskDoesNotExist,
  TaskTimedOut,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { AwsCallFailedError } from '../errors';
import { translateAwsError } from './aws-errors';
import type { ExecutionStatus, Executions, StartedExecution } from '../ports/executions';
import type { TaskCallbacks } from '../ports/run-credentials';

/** Step Functions caps an error cause at 32,768 characters. */
const MAX_CAUSE = 32_768;

/** Executions of one state machine through the Step Functions API. */
export class SfnExecutions implements Executions, TaskCallbacks {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  /** Starts `runId`; an existing execution of that name counts as started, not as an error. */
  async start(runId: string, input: unknown): Promise<StartedExecution> {
    try {
      const out = await this.client.send(
        new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name: runId, input: JSON.stringify(input) }),
      );
      if (out.executionArn === undefined) throw new AwsCallFailedError('StartExecution returned no executionArn');
      return { executionArn: out.executionArn, alreadyStarted: false };
    } catch (error) {
      // A retried submit after a lost response: the name is taken by our own earlier call.
      if (error instanceof ExecutionAlreadyExists) {
        return { executionArn: this.executionArnFor(runId), alreadyStarted: true };
      }
      throw translateAwsError(error, 'StartExecution');
    }
  }

  /** One ListExecutions page per 1,000 running executions. */
  async running(): Promise<Set<string>> {
    const arns = new Set<string>();
    try {
      for await (const page of paginateListExecutions(
        { client: this.client, pageSize: 1000 },
        { stateMachineArn: this.stateMachineArn, statusFilter: 'RUNNING', maxResults: 1000 },
      )) {
        for (const execution of page.executions ?? []) if (execution.executionArn !== undefined) arns.add(execution.executionArn);
      }
    } catch (error) {
      throw translateAwsError(error, 'ListExecutions');
    }
    return arns;
  }

  async status(executionArn: string): Promise<ExecutionStatus | undefined> {
    try {
      const out = await this.client.send(new DescribeExecutionCommand({ executionArn }));
      return out.status;
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return undefined;
      throw translateAwsError(error, 'DescribeExecution');
    }
  }

  async failTask(taskToken: string, error: string, cause: string): Promise<boolean> {
    return this.callback('SendTaskFailure', () =>
      this.client.send(new SendTaskFailureCommand({ taskToken, error, cause: cause.slice(0, MAX_CAUSE) })),
    );
  }

  async succeedTask(taskToken: string, output: string): Promise<boolean> {
    return this.callback('SendTaskSuccess', () => this.client.send(new SendTaskSuccessCommand({ taskToken, output })));
  }

  async heartbeatTask(taskToken: string): Promise<boolean> {
    return this.callback('SendTaskHeartbeat', () => this.client.send(new SendTaskHeartbeatCommand({ taskToken })));
  }

  private async callback(operation: string, send: () => Promise<unknown>): Promise<boolean> {
    try {
      await send();
      return true;
    } catch (err) {
      // The task already closed (callback raced us, heartbeat timeout): nothing left to answer.
      if (err instanceof TaskDoesNotExist || err instanceof TaskTimedOut || err instanceof InvalidToken) return false;
      throw translateAwsError(err, operation);
    }
  }

  /** Execution ARNs are the state machine ARN with `stateMachine` → `execution` plus the name. */
  private executionArnFor(name: string): string {
    return `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
  }
}
