/**
 * The EC2 events that EventBridge delivers to the event handlers, as zod schemas of the whole
 * envelope. Each rule matches one `detail-type` from `aws.ec2`; the handler parses the event
 * again, so a rule pattern that drifted (or a hand-made test event) fails loudly, by field.
 * Shapes: the EC2 user guide's "Spot Instance interruption notices", "EC2 instance rebalance
 * recommendations" and "State change events for Amazon EC2 instances".
 */
import { z } from 'zod';
import { RunctlError } from '../errors';

/** `i-0abc…` on AWS; the local backend's instances are `i-local…`. */
export const InstanceIdSchema = z.string().regex(/^i-[0-9a-z]{1,32}$/, 'must be an EC2 instance id like i-0123456789abcdef0');

/** The EventBridge envelope around an `aws.ec2` event of one detail-type. */
function ec2Event<const DetailType extends string, Detail extends z.ZodType>(detailType: DetailType, detail: Detail) {
  return z.object({
    version: z.string(),
    id: z.string().min(1),
    'detail-type': z.literal(detailType),
    source: z.literal('aws.ec2'),
    account: z.string(),
    time: z.iso.datetime(),
    region: z.string().min(1),
    resources: z.array(z.string()),
    detail,
  });
}

/** Two minutes before EC2 reclaims a spot instance (best effort; the agent also polls IMDS). */
export const SpotInterruptionWarningSchema = ec2Event(
  'EC2 Spot Instance Interruption Warning',
  z.object({
    'instance-id': InstanceIdSchema,
    /** What EC2 will do: runctl launches with `terminate`, but any value is accepted. */
    'instance-action': z.enum(['terminate', 'stop', 'hibernate']),
  }),
);
export type SpotInterruptionWarning = z.infer<typeof SpotInterruptionWarningSchema>;

/** A spot instance is at elevated risk of interruption; may come long before the warning, or with it. */
export const RebalanceRecommendationSchema = ec2Event(
  'EC2 Instance Rebalance Recommendation',
  z.object({ 'instance-id': InstanceIdSchema }),
);
export type RebalanceRecommendation = z.infer<typeof RebalanceRecommendationSchema>;

export const INSTANCE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

/** States after which no training runs on the instance: the rule only forwards these. */
export const LOST_STATES = ['shutting-down', 'terminated', 'stopping', 'stopped'] as const satisfies readonly InstanceState[];

export const InstanceStateChangeSchema = ec2Event(
  'EC2 Instance State-change Notification',
  z.object({ 'instance-id': InstanceIdSchema, state: z.enum(INSTANCE_STATES) }),
);
export type InstanceStateChange = z.infer<typeof InstanceStateChangeSchema>;

/** An event that does not match its rule's schema: a wiring bug, so the invocation fails (and is retried, then dead-lettered). */
export class EventInvalidError extends RunctlError {
  override name = 'Event.Invalid';
}

/** Parses an EventBridge event with `schema`, naming every field that does not fit. */
export function parseEc2Event<S extends z.ZodType>(schema: S, event: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(event);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new EventInvalidError(`Not an ${what} event: ${problems}`);
}
