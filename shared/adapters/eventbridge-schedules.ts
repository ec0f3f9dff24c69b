import { CreateScheduleCommand, DeleteScheduleCommand, GetScheduleCommand, type SchedulerClient } from '@aws-sdk/client-scheduler';
import { AwsCallFailedError, RunInvalidError } from '../errors';
import type { ScheduleTrigger, Scheduler } from '../ports/schedules';
import { awsErrorCode, translateAwsError } from './aws-errors';

export interface EventBridgeSchedulerOptions {
  /** Schedule group the schedules live in (`default` unless the stack creates one). */
  groupName: string;
  /** ARN of the start-scheduled-run Lambda function. */
  targetArn: string;
  /** Role EventBridge Scheduler assumes to invoke the target (lambda:InvokeFunction on it). */
  roleArn: string;
  /** Prefix of schedule names, so runctl's schedules are recognisable in the console. */
  namePrefix: string;
}

/**
 * Scheduler retries a failed invocation; start-scheduled-run is idempotent on the schedule id and
 * scheduled time, so a retry or a duplicate delivery never starts a second run.
 */
const MAX_RETRY_ATTEMPTS = 3;
/** A delivery later than this after its scheduled time is dropped rather than started late. */
const MAX_EVENT_AGE_SECONDS = 3600;

/**
 * The target input. `<aws.scheduler.scheduled-time>` is a context attribute EventBridge Scheduler
 * substitutes with the invocation's scheduled time: the same for every retry of one firing.
 */
export function targetInput(scheduleId: string): string {
  return `{"scheduleId":${JSON.stringify(scheduleId)},"scheduledTime":"<aws.scheduler.scheduled-time>"}`;
}

/** User schedules as EventBridge Scheduler schedules that invoke start-scheduled-run. */
export class EventBridgeScheduler implements Scheduler {
  constructor(
    private readonly client: SchedulerClient,
    private readonly options: EventBridgeSchedulerOptions,
  ) {}

  /** Schedule names are at most 64 characters of [0-9a-zA-Z-_.]. */
  scheduleName(scheduleId: string): string {
    return `${this.options.namePrefix}${scheduleId}`;
  }

  async create(trigger: ScheduleTrigger): Promise<string> {
    const name = this.scheduleName(trigger.scheduleId);
    try {
      const output = await this.client.send(
        new CreateScheduleCommand({
          Name: name,
          GroupName: this.options.groupName,
          ScheduleExpression: trigger.expression,
          ScheduleExpressionTimezone: trigger.timezone,
          Description: trigger.description?.slice(0, 512),
          FlexibleTimeWindow: { Mode: 'OFF' },
          State: 'ENABLED',
          // A retried create (same name, same parameters) is answered from the first call.
          ClientToken: name,
          Target: {
            Arn: this.options.targetArn,
            RoleArn: this.options.roleArn,
            Input: targetInput(trigger.scheduleId),
            RetryPolicy: { MaximumRetryAttempts: MAX_RETRY_ATTEMPTS, MaximumEventAgeInSeconds: MAX_EVENT_AGE_SECONDS },
          },
        }),
      );
      if (output.ScheduleArn === undefined) throw new AwsCallFailedError(`CreateSchedule ${name} returned no ARN`);
      return output.ScheduleArn;
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === 'ConflictException') return this.existingArn(name, error);
      if (code === 'ValidationException') {
        // The expression passed our own check but not Scheduler's (e.g. a date that never comes).
        const message = error instanceof Error ? error.message : String(error);
        throw new RunInvalidError(`EventBridge Scheduler refused the schedule: ${message}`, [{ path: 'expression', message }], {
          cause: error,
        });
      }
      throw translateAwsError(error, `CreateSchedule ${name}`);
    }
  }

  async delete(scheduleId: string): Promise<void> {
    const name = this.scheduleName(scheduleId);
    try {
      await this.client.send(new DeleteScheduleCommand({ Name: name, GroupName: this.options.groupName }));
    } catch (error) {
      if (awsErrorCode(error) === 'ResourceNotFoundException') return;
      throw translateAwsError(error, `DeleteSchedule ${name}`);
    }
  }

  /** The ARN of a schedule that already exists under `name` (a retried create). */
  private async existingArn(name: string, conflict: unknown): Promise<string> {
    try {
      const output = await this.client.send(new GetScheduleCommand({ Name: name, GroupName: this.options.groupName }));
      if (output.Arn === undefined) throw new AwsCallFailedError(`GetSchedule ${name} returned no ARN`, { cause: conflict });
      return output.Arn;
    } catch (error) {
      throw translateAwsError(error, `GetSchedule ${name}`);
    }
  }
}
