import type { RunSpec } from '../domain/run-spec';
import type { ListOptions, Page } from './run-store';

/**
 * User schedules: a stored run spec that an EventBridge Scheduler schedule starts on a cron or
 * rate expression. The spec lives in the runs table (shared/adapters/dynamo-schedules.ts); the
 * schedule itself in EventBridge Scheduler (shared/adapters/eventbridge-schedules.ts).
 */

export interface ScheduleRecord {
  /** `sch-` + 16 hex characters. */
  scheduleId: string;
  /** IAM identity (ARN) that created it; the runs it starts belong to the same identity. */
  owner: string;
  name: string;
  /** `cron(…)` or `rate(…)`, as EventBridge Scheduler takes it. */
  expression: string;
  /** IANA time zone of a cron expression; absent means UTC. */
  timezone?: string;
  /** The normalised run spec each started run gets. */
  spec: RunSpec;
  createdAt: string;
  /** ARN of the EventBridge Scheduler schedule, once created. */
  schedulerArn?: string;
}

/** Persistence of schedule records. */
export interface ScheduleStore {
  /** Creates the record; throws ConflictError when the id exists. */
  create(record: ScheduleRecord): Promise<void>;
  get(scheduleId: string): Promise<ScheduleRecord | undefined>;
  /** Records the ARN of the created EventBridge schedule. */
  setSchedulerArn(scheduleId: string, arn: string): Promise<void>;
  /** The owner's schedules, newest first. */
  listByOwner(owner: string, options?: ListOptions): Promise<Page<ScheduleRecord>>;
  /** Deletes the record; deleting one already gone is success. */
  delete(scheduleId: string): Promise<void>;
}

/** What EventBridge Scheduler needs to fire a schedule. */
export interface ScheduleTrigger {
  scheduleId: string;
  expression: string;
  timezone?: string;
  description?: string;
}

/** The scheduler service that fires start-scheduled-run with `{scheduleId, scheduledTime}`. */
export interface Scheduler {
  /** Creates the schedule; one already there under that id is success. Returns its ARN. */
  create(trigger: ScheduleTrigger): Promise<string>;
  /** Deletes the schedule; one already gone is success. */
  delete(scheduleId: string): Promise<void>;
}
