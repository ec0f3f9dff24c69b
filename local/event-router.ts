import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import type {
  InstanceState,
  InstanceStateChange,
  RebalanceRecommendation,
  SpotInterruptionWarning,
} from '../shared/events/ec2-events';

/**
 * EventBridge on the local backend: builds the EC2 events exactly as AWS sends them (the
 * envelope and detail of the EC2 user guide's samples, see test/fixtures/events) and delivers
 * them in process to the real event handlers, chosen by detail-type or by an EventBridge event
 * pattern, the way a rule with a Lambda target would. As on AWS, delivery is asynchronous for
 * the sender: a failing handler is logged, never thrown back at whoever emitted the event.
 */

export const EC2_DETAIL_TYPE = {
  spotInterruptionWarning: 'EC2 Spot Instance Interruption Warning',
  rebalanceRecommendation: 'EC2 Instance Rebalance Recommendation',
  stateChange: 'EC2 Instance State-change Notification',
} as const;

/** Any EventBridge event (the envelope every event shares). */
export interface EventEnvelope {
  version: string;
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: unknown;
}

/** A Lambda handler as the router calls it. */
export type EventHandler = (event: EventEnvelope, context: Context) => unknown;

/**
 * An EventBridge event pattern, the subset rules here use: each key lists the allowed values
 * (exact match), and an object value matches the nested field, e.g.
 * `{ source: ['aws.ec2'], 'detail-type': [...], detail: { state: ['terminated'] } }`.
 */
export interface EventPattern {
  [field: string]: readonly (string | number | boolean)[] | EventPattern;
}

export interface DeliveryOutcome {
  target: string;
  ok: boolean;
  result?: unknown;
  error?: unknown;
}

export interface EventRouterOptions {
  /** Account id in the envelope and ARNs (default: the local backend's 000000000000). */
  account?: string;
  region?: string;
  now?: () => Date;
  /** Where delivery failures go (default: console.error). */
  logError?: (message: string, error: unknown) => void;
}

interface Target {
  name: string;
  pattern: EventPattern;
  handler: EventHandler;
  /** Put the handler's result on the bus, as a Lambda OnSuccess destination to EventBridge does. */
  onSuccessToBus: boolean;
}

/** The detail-type of what a Lambda destination puts on EventBridge after a successful invocation. */
export const LAMBDA_SUCCESS_DETAIL_TYPE = 'Lambda Function Invocation Result - Success';

export class EventRouter {
  private readonly targets: Target[] = [];
  private readonly account: string;
  private readonly region: string;
  private readonly now: () => Date;
  private readonly logError: (message: string, error: unknown) => void;

  constructor(options: EventRouterOptions = {}) {
    this.account = options.account ?? '000000000000';
    this.region = options.region ?? 'us-east-1';
    this.now = options.now ?? (() => new Date());
    this.logError = options.logError ?? ((message, error) => console.error(message, error));
  }

  /**
   * Registers a handler for a detail-type (any source) or an event pattern; `name` identifies
   * it in logs and in the Lambda context. Returns a function that removes it.
   */
  on(match: string | EventPattern, handler: EventHandler, name?: string, options: { onSuccessToBus?: boolean } = {}): () => void {
    const pattern: EventPattern = typeof match === 'string' ? { 'detail-type': [match] } : match;
    const target: Target = {
      name: name ?? (typeof match === 'string' ? match : 'handler'),
      pattern,
      handler,
      onSuccessToBus: options.onSuccessToBus ?? false,
    };
    this.targets.push(target);
    return () => {
      const index = this.targets.indexOf(target);
      if (index >= 0) this.targets.splice(index, 1);
    };
  }

  /** Delivers an event to every matching handler, concurrently; resolves when all have finished. */
  async deliver(event: EventEnvelope): Promise<DeliveryOutcome[]> {
    const targets = this.targets.filter((t) => matchesPattern(t.pattern, event));
    return Promise.all(
      targets.map(async (target): Promise<DeliveryOutcome> => {
        try {
          // Handlers get their own copy, as each Lambda invocation gets its own deserialized event.
          const context = localLambdaContext(target.name, this.region, this.account);
          const result = await target.handler(structuredClone(event), context);
          // Asynchronous, as on AWS: the destination's targets run after this delivery returns.
          if (target.onSuccessToBus) void this.deliver(this.destinationEvent(event, result, context.invokedFunctionArn, context.awsRequestId));
          return { target: target.name, ok: true, result };
        } catch (error) {
          this.logError(`event ${event['detail-type']} ${event.id} to ${target.name} failed`, error);
          return { target: target.name, ok: false, error };
        }
      }),
    );
  }

  /** The `EC2 Spot Instance Interruption Warning` for an instance. */
  spotInterruptionWarning(
    instanceId: string,
    action: SpotInterruptionWarning['detail']['instance-action'] = 'terminate',
  ): SpotInterruptionWarning {
    return {
      ...this.envelope(EC2_DETAIL_TYPE.spotInterruptionWarning, instanceId),
      detail: { 'instance-id': instanceId, 'instance-action': action },
    };
  }

  /** The `EC2 Instance Rebalance Recommendation` for an instance. */
  rebalanceRecommendation(instanceId: string): RebalanceRecommendation {
    return { ...this.envelope(EC2_DETAIL_TYPE.rebalanceRecommendation, instanceId), detail: { 'instance-id': instanceId } };
  }

  /** The `EC2 Instance State-change Notification` for an instance entering `state`. */
  instanceStateChange(instanceId: string, state: InstanceState): InstanceStateChange {
    return { ...this.envelope(EC2_DETAIL_TYPE.stateChange, instanceId), detail: { 'instance-id': instanceId, state } };
  }

  /** Builds and delivers a spot interruption warning. */
  emitSpotInterruptionWarning(instanceId: string): Promise<DeliveryOutcome[]> {
    return this.deliver(this.spotInterruptionWarning(instanceId));
  }

  /** Builds and delivers a rebalance recommendation. */
  emitRebalanceRecommendation(instanceId: string): Promise<DeliveryOutcome[]> {
    return this.deliver(this.rebalanceRecommendation(instanceId));
  }

  /** Builds and delivers a state-change notification (fits LocalCompute's onStateChange, gone aside). */
  emitInstanceStateChange(instanceId: string, state: InstanceState): Promise<DeliveryOutcome[]> {
    return this.deliver(this.instanceStateChange(instanceId, state));
  }

  /** What a Lambda OnSuccess destination to EventBridge puts on the bus (the AWS Lambda developer guide's record). */
  private destinationEvent(request: EventEnvelope, response: unknown, functionArn: string, requestId: string): EventEnvelope {
    const time = this.now().toISOString();
    return {
      version: '0',
      id: randomUUID(),
      'detail-type': LAMBDA_SUCCESS_DETAIL_TYPE,
      source: 'lambda',
      account: this.account,
      time: time.replace(/\.\d{3}Z$/, 'Z'),
      region: this.region,
      resources: [`${functionArn}:$LATEST`],
      detail: {
        version: '1.0',
        timestamp: time,
        requestContext: { requestId, functionArn: `${functionArn}:$LATEST`, condition: 'Success', approximateInvokeCount: 1 },
        requestPayload: request,
        responseContext: { statusCode: 200, executedVersion: '$LATEST' },
        responsePayload: structuredClone(response ?? null),
      },
    };
  }

  private envelope<const T extends string>(detailType: T, instanceId: string) {
    return {
      version: '0',
      id: randomUUID(),
      'detail-type': detailType,
      source: 'aws.ec2' as const,
      account: this.account,
      // EventBridge times have second precision: 2021-11-11T21:29:54Z.
      time: this.now().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      region: this.region,
      resources: [`arn:aws:ec2:${this.region}:${this.account}:instance/${instanceId}`],
    };
  }
}

/** Whether `event` matches an EventBridge pattern (exact values and nested fields). */
export function matchesPattern(pattern: EventPattern, event: unknown): boolean {
  if (typeof event !== 'object' || event === null) return false;
  return Object.entries(pattern).every(([field, allowed]) => {
    const value: unknown = Reflect.get(event, field);
    if (isValueList(allowed)) {
      // As in EventBridge, a pattern value matches a scalar field or any element of an array field.
      const values: unknown[] = Array.isArray(value) ? value : [value];
      return values.some((v) => allowed.some((a) => a === v));
    }
    return matchesPattern(allowed, value);
  });
}

function isValueList(value: readonly (string | number | boolean)[] | EventPattern): value is readonly (string | number | boolean)[] {
  return Array.isArray(value);
}

/** A Lambda context for an in-process invocation (enough for middy and the Powertools logger). */
export function localLambdaContext(functionName: string, region = 'us-east-1', account = '000000000000'): Context {
  const deadline = Date.now() + 900_000;
  const name = functionName.replace(/[^A-Za-z0-9_-]/g, '-');
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${account}:function:${name}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: `local/[$LATEST]${randomUUID().replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
