import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { NotFoundError, RunInvalidError, type FieldIssue } from '../errors';
import { parseRunSpec, toFieldIssues } from '../domain/run-spec';
import { secretRefIssues, secretsScope, type SecretsScope } from '../domain/secret-refs';
import type { ScheduleRecord, ScheduleStore, Scheduler } from '../ports/schedules';
import { submitRun, type SubmitRunDeps } from './submit-run';

/**
 * User schedules: `POST /schedules` stores a validated run spec and creates an EventBridge
 * Scheduler schedule that invokes start-scheduled-run, which submits the spec as a run of the
 * schedule's owner, tagged with the schedule id.
 */

export interface ScheduleApiDeps {
  schedules: ScheduleStore;
  scheduler: Scheduler;
  clock: () => Date;
  /** The stack's secrets prefix: a scheduled spec's secrets are checked against the owner's path. */
  secretsPrefix?: string;
}

export interface StartScheduledRunDeps extends SubmitRunDeps {
  schedules: ScheduleStore;
}

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const CRON = /^cron\((.*)\)$/;

/** Characters each of the six cron fields may hold (EventBridge's cron dialect). */
const CRON_FIELDS: readonly { name: string; pattern: RegExp }[] = [
  { name: 'minutes', pattern: /^[0-9,*/-]+$/ },
  { name: 'hours', pattern: /^[0-9,*/-]+$/ },
  { name: 'day-of-month', pattern: /^([0-9,*/?LW-]+)$/ },
  { name: 'month', pattern: /^([0-9,*/-]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)+$/i },
  { name: 'day-of-week', pattern: /^([0-9,*/?L#-]|SUN|MON|TUE|WED|THU|FRI|SAT)+$/i },
  { name: 'year', pattern: /^[0-9,*/-]+$/ },
];

/** Why a schedule expression is refused, or undefined when it is acceptable. */
export function expressionProblem(expression: string): string | undefined {
  const rate = RATE.exec(expression);
  if (rate !== null) {
    const value = Number(rate[1]);
    const unit = rate[2] ?? '';
    if (value < 1) return 'rate(…) needs a value of at least 1, like rate(6 hours)';
    if (value === 1 && unit.endsWith('s')) return `write rate(1 ${unit.slice(0, -1)}): the unit is singular for 1`;
    if (value > 1 && !unit.endsWith('s')) return `write rate(${value} ${unit}s): the unit is plural above 1`;
    return undefined;
  }
  const cron = CRON.exec(expression);
  if (cron !== null) {
    const fields = (cron[1] ?? '').trim().split(/\s+/);
    if (fields.length !== 6) {
      return `cron(…) takes six fields (minutes hours day-of-month month day-of-week year), like cron(0 3 * * ? *); got ${fields.length}`;
    }
    for (const [i, field] of CRON_FIELDS.entries()) {
      const value = fields[i] ?? '';
      if (!field.pattern.test(value)) return `cron field ${field.name} "${value}" is not valid`;
    }
    const dayOfMonth = fields[2];
    const dayOfWeek = fields[4];
    if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
      return 'in cron(…) exactly one of day-of-month and day-of-week must be "?", like cron(0 3 * * ? *)';
    }
    return undefined;
  }
  return 'must be "cron(minutes hours day-of-month month day-of-week year)" or "rate(value unit)", like cron(0 3 * * ? *) or rate(6 hours)';
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const CreateScheduleBodySchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, ".", "_" or "-"'),
  expression: z.string().superRefine((value, ctx) => {
    const problem = expressionProblem(value.trim());
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  }),
  /** IANA time zone a cron expression is read in; default UTC. */
  timezone: z.string().refine(isTimeZone, 'must be an IANA time zone like Europe/Paris or America/New_York').optional(),
  spec: z.unknown().refine((v) => v !== undefined, 'is required: the run spec each scheduled run gets (see docs/run-spec.md)'),
});

export const ListSchedulesQuerySchema = z.object({
  limit: z.coerce.number().int().min(1, 'must be between 1 and 100').max(100, 'must be between 1 and 100').default(25),
  nextToken: z.string().min(1).optional(),
});

function invalid(what: string, issues: FieldIssue[]): RunInvalidError {
  return new RunInvalidError(`Invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

/** Validates the spec now, so a schedule never fires a spec that cannot run; field paths under `spec.`. */
function parseScheduledSpec(spec: unknown, secrets: SecretsScope | undefined): ScheduleRecord['spec'] {
  let parsed: ScheduleRecord['spec'];
  try {
    parsed = parseRunSpec(spec);
  } catch (error) {
    if (!(error instanceof RunInvalidError)) throw error;
    throw invalid(
      'run spec',
      error.issues.map((i) => ({ path: i.path === '(root)' ? 'spec' : `spec.${i.path}`, message: i.message })),
    );
  }
  const outside = secretRefIssues(parsed.secrets ?? {}, secrets);
  if (outside.length > 0) throw invalid('run spec', outside.map((i) => ({ path: `spec.${i.path}`, message: i.message })));
  return parsed;
}

/** Creates a schedule of the caller's: the record first, then the EventBridge schedule (undone if that fails). */
export async function createSchedule(request: { owner: string; body: unknown }, deps: ScheduleApiDeps): Promise<ScheduleRecord> {
  const body = CreateScheduleBodySchema.safeParse(request.body);
  if (!body.success) throw invalid('request', toFieldIssues(body.error));
  const spec = parseScheduledSpec(body.data.spec, secretsScope(deps.secretsPrefix, request.owner));
  const record: ScheduleRecord = {
    scheduleId: `sch-${randomBytes(8).toString('hex')}`,
    owner: request.owner,
    name: body.data.name,
    expression: body.data.expression.trim(),
    timezone: body.data.timezone,
    spec,
    createdAt: deps.clock().toISOString(),
  };
  await deps.schedules.create(record);
  let schedulerArn: string;
  try {
    schedulerArn = await deps.scheduler.create({
      scheduleId: record.scheduleId,
      expression: record.expression,
      timezone: record.timezone,
      description: `runctl schedule ${record.name}`,
    });
  } catch (error) {
    // No schedule fires for this record: remove it so the caller's list shows only live ones.
    await deps.schedules.delete(record.scheduleId);
    throw error;
  }
  await deps.schedules.setSchedulerArn(record.scheduleId, schedulerArn);
  return { ...record, schedulerArn };
}

/** The caller's schedules, newest first. */
export async function listSchedules(
  request: { owner: string; query: unknown },
  deps: Pick<ScheduleApiDeps, 'schedules'>,
): Promise<{ schedules: ScheduleRecord[]; nextToken?: string }> {
  const query = ListSchedulesQuerySchema.safeParse(request.query ?? {});
  if (!query.success) throw invalid('query', toFieldIssues(query.error));
  const page = await deps.schedules.listByOwner(request.owner, query.data);
  return { schedules: page.items, nextToken: page.nextToken };
}

/** Deletes a schedule of the caller's; another owner's is reported as not found. */
export async function deleteSchedule(request: { owner: string; scheduleId: string }, deps: ScheduleApiDeps): Promise<void> {
  const record = SCHEDULE_ID.test(request.scheduleId) ? await deps.schedules.get(request.scheduleId) : undefined;
  if (record === undefined || record.owner !== request.owner) throw new NotFoundError(`Schedule ${request.scheduleId} not found`);
  // The EventBridge schedule first: a record without a schedule is harmless, the reverse fires into nothing.
  await deps.scheduler.delete(record.scheduleId);
  await deps.schedules.delete(record.scheduleId);
}

const SCHEDULE_ID = /^sch-[0-9a-f]{16}$/;

/** What EventBridge Scheduler delivers to start-scheduled-run (see shared/adapters/eventbridge-schedules.ts). */
export const ScheduledRunEventSchema = z.object({
  scheduleId: z.string().regex(SCHEDULE_ID, 'must be a schedule id like sch-0123456789abcdef'),
  /** The firing's scheduled time, the same on every retry of it. */
  scheduledTime: z.iso.datetime({ offset: true }).optional(),
});

export type StartScheduledRunResult =
  | { started: true; runId: string; created: boolean; clientToken: string }
  | { started: false; reason: string };

/** `2026-01-05T03:00:00Z` → `20260105T030000Z`. */
function compactTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replaceAll('-', '').replaceAll(':', '');
}

/**
 * The client token of one firing: schedule id + scheduled time. A duplicate delivery or a retry
 * of the same firing carries the same time, so submitRun lands on the same run. Without a
 * scheduled time (an invocation by hand) the current minute stands in.
 */
export function scheduledClientToken(scheduleId: string, scheduledTime: Date): string {
  return `${scheduleId}.${compactTime(scheduledTime)}`;
}

/** Starts the run of one schedule firing; a deleted schedule or a spec that no longer validates starts nothing. */
export async function startScheduledRun(event: unknown, deps: StartScheduledRunDeps): Promise<StartScheduledRunResult> {
  const parsed = ScheduledRunEventSchema.safeParse(event);
  if (!parsed.success) throw invalid('scheduled event', toFieldIssues(parsed.error));
  const { scheduleId, scheduledTime } = parsed.data;
  const schedule = await deps.schedules.get(scheduleId);
  if (schedule === undefined) return { started: false, reason: `Schedule ${scheduleId} no longer exists` };

  const at = scheduledTime === undefined ? new Date(Math.floor(deps.clock().getTime() / 60_000) * 60_000) : new Date(scheduledTime);
  const clientToken = scheduledClientToken(scheduleId, at);
  try {
    const { record, created } = await submitRun(
      { owner: schedule.owner, body: { clientToken, spec: schedule.spec }, scheduleId },
      deps,
    );
    return { started: true, runId: record.runId, created, clientToken };
  } catch (error) {
    // A retry cannot fix a spec that no longer validates; say so instead of failing forever.
    if (error instanceof RunInvalidError) return { started: false, reason: error.message };
    throw error;
  }
}
