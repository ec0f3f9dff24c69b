import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EC2_DETAIL_TYPE, EventRouter, matchesPattern, type EventEnvelope } from '../../local/event-router';
import {
  InstanceStateChangeSchema,
  LOST_STATES,
  RebalanceRecommendationSchema,
  SpotInterruptionWarningSchema,
} from '../../shared/events/ec2-events';

function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../fixtures/events/${name}.json`, import.meta.url), 'utf8'));
}

/** Top-level keys, and the keys of `detail`, sorted: the shape without the values. */
function shape(event: object): { keys: string[]; detail: string[] } {
  const detail: unknown = Reflect.get(event, 'detail');
  return {
    keys: Object.keys(event).sort(),
    detail: typeof detail === 'object' && detail !== null ? Object.keys(detail).sort() : [],
  };
}

const INSTANCE = 'i-local0123abcd';
const router = new EventRouter({ now: () => new Date('2026-03-01T10:05:00.123Z') });

describe('EventRouter envelopes', () => {
  const cases = [
    ['spot-interruption-warning', router.spotInterruptionWarning(INSTANCE), SpotInterruptionWarningSchema],
    ['rebalance-recommendation', router.rebalanceRecommendation(INSTANCE), RebalanceRecommendationSchema],
    ['instance-state-change', router.instanceStateChange(INSTANCE, 'terminated'), InstanceStateChangeSchema],
  ] as const;

  it.each(cases)('%s has the recorded shape and parses with the handler schema', (name, event, schema) => {
    const recorded = fixture(name);

    expect(shape(event)).toEqual(shape(recorded));
    expect(event['detail-type']).toBe(recorded['detail-type']);
    expect(event.source).toBe('aws.ec2');
    expect(event.version).toBe('0');
    expect(schema.safeParse(event).success).toBe(true);
    expect(event.resources).toEqual([`arn:aws:ec2:us-east-1:000000000000:instance/${INSTANCE}`]);
    expect(event.time).toBe('2026-03-01T10:05:00Z');
    expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('fills each detail from the instance', () => {
    expect(router.spotInterruptionWarning(INSTANCE).detail).toEqual({ 'instance-id': INSTANCE, 'instance-action': 'terminate' });
    expect(router.rebalanceRecommendation(INSTANCE).detail).toEqual({ 'instance-id': INSTANCE });
    expect(router.instanceStateChange(INSTANCE, 'shutting-down').detail).toEqual({ 'instance-id': INSTANCE, state: 'shutting-down' });
    expect(router.spotInterruptionWarning(INSTANCE).id).not.toBe(router.spotInterruptionWarning(INSTANCE).id);
  });
});

describe('EventRouter delivery', () => {
  it('delivers by detail-type to each registered handler with a Lambda context', async () => {
    const local = new EventRouter();
    const seen: Array<[string, string, string]> = [];
    local.on(EC2_DETAIL_TYPE.spotInterruptionWarning, (event, context) => {
      seen.push(['spot', event['detail-type'], context.functionName]);
      return 'handled';
    }, 'spot-warning');
    local.on(EC2_DETAIL_TYPE.rebalanceRecommendation, (event) => void seen.push(['rebalance', event['detail-type'], '']));

    const outcomes = await local.emitSpotInterruptionWarning(INSTANCE);

    expect(outcomes).toEqual([{ target: 'spot-warning', ok: true, result: 'handled' }]);
    expect(seen).toEqual([['spot', 'EC2 Spot Instance Interruption Warning', 'spot-warning']]);
  });

  it('logs a failing handler instead of throwing, and still delivers to the others', async () => {
    const logged: string[] = [];
    const local = new EventRouter({ logError: (message) => void logged.push(message) });
    const delivered: string[] = [];
    local.on(EC2_DETAIL_TYPE.rebalanceRecommendation, async () => {
      throw new Error('handler broke');
    }, 'broken');
    local.on(EC2_DETAIL_TYPE.rebalanceRecommendation, async (event) => void delivered.push(event.id), 'fine');

    const outcomes = await local.emitRebalanceRecommendation(INSTANCE);

    expect(outcomes.map((o) => [o.target, o.ok])).toEqual([
      ['broken', false],
      ['fine', true],
    ]);
    expect(delivered).toHaveLength(1);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('to broken failed');
  });

  it('filters with an EventBridge pattern, as the state-change rule does, and can unregister', async () => {
    const local = new EventRouter();
    const states: unknown[] = [];
    const off = local.on(
      { source: ['aws.ec2'], 'detail-type': [EC2_DETAIL_TYPE.stateChange], detail: { state: [...LOST_STATES] } },
      (event: EventEnvelope) => void states.push(Reflect.get(Object(event.detail), 'state')),
      'instance-state-change',
    );

    await local.emitInstanceStateChange(INSTANCE, 'pending');
    await local.emitInstanceStateChange(INSTANCE, 'running');
    await local.emitInstanceStateChange(INSTANCE, 'shutting-down');
    off();
    await local.emitInstanceStateChange(INSTANCE, 'terminated');

    expect(states).toEqual(['shutting-down']);
  });

  it('matches patterns on nested fields and array fields', () => {
    const event = router.instanceStateChange(INSTANCE, 'stopped');

    expect(matchesPattern({ resources: [event.resources[0] ?? ''] }, event)).toBe(true);
    expect(matchesPattern({ detail: { 'instance-id': ['i-other'] } }, event)).toBe(false);
    expect(matchesPattern({ source: ['aws.ec2'], detail: { state: ['stopped'] } }, event)).toBe(true);
    expect(matchesPattern({ detail: { missing: ['x'] } }, event)).toBe(false);
  });
});
