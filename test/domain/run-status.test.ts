import { describe, expect, it } from 'vitest';
import {
  canTransition,
  isRunStatus,
  isTerminal,
  LIVE_STATUSES,
  RUN_STATUSES,
  TERMINAL_STATUSES,
  type LiveStatus,
  type RunStatus,
} from '../../shared/domain/run-status';

const pairs = (froms: readonly RunStatus[], tos: readonly RunStatus[]): [RunStatus, RunStatus][] =>
  froms.flatMap((from) => tos.map((to): [RunStatus, RunStatus] => [from, to]));

describe('status sets', () => {
  it('splits every status into live or terminal, once', () => {
    expect(new Set(RUN_STATUSES).size).toBe(RUN_STATUSES.length);
    expect(RUN_STATUSES.filter((s) => isTerminal(s))).toEqual([...TERMINAL_STATUSES]);
    expect(RUN_STATUSES.filter((s) => !isTerminal(s))).toEqual([...LIVE_STATUSES]);
  });

  it('has the terminal statuses of the design', () => {
    expect([...TERMINAL_STATUSES].sort()).toEqual(
      ['CANCELLED', 'FAILED_CONTROLLER', 'FAILED_NO_CAPACITY', 'FAILED_PRECHECKS', 'FAILED_USER', 'STOPPED_BUDGET', 'STOPPED_EARLY', 'SUCCEEDED'],
    );
  });

  it('recognises status strings', () => {
    expect(isRunStatus('TRAINING')).toBe(true);
    expect(isRunStatus('SUCCEEDED')).toBe(true);
    expect(isRunStatus('training')).toBe(false);
    expect(isRunStatus('DONE')).toBe(false);
  });
});

describe('canTransition', () => {
  it.each(pairs(TERMINAL_STATUSES, RUN_STATUSES))('terminal %s is final: not to %s', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });

  it.each(pairs(LIVE_STATUSES, TERMINAL_STATUSES))('live %s can end as %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
  });

  it.each(LIVE_STATUSES.map((s) => [s]))('%s may be rewritten with itself (a retried step is harmless)', (status) => {
    expect(canTransition(status, status)).toBe(true);
  });

  it.each(LIVE_STATUSES.map((s) => [s]))('%s can be cancelled', (status) => {
    expect(canTransition(status, 'CANCELLING')).toBe(true);
  });

  it.each(LIVE_STATUSES.filter((s) => s !== 'CANCELLING').map((s) => [s]))('CANCELLING never goes back to %s', (to) => {
    expect(canTransition('CANCELLING', to)).toBe(false);
  });

  const forward: [LiveStatus, LiveStatus][] = [
    ['PENDING', 'VALIDATING'],
    ['VALIDATING', 'PROVISIONING'],
    ['PROVISIONING', 'STARTING'],
    ['PROVISIONING', 'WAITING_FOR_CAPACITY'],
    ['WAITING_FOR_CAPACITY', 'PROVISIONING'],
    ['WAITING_FOR_CAPACITY', 'STARTING'],
    ['STARTING', 'ATTACHING_VOLUME'],
    ['STARTING', 'PREFETCHING'],
    ['STARTING', 'TRAINING'],
    ['ATTACHING_VOLUME', 'PREFETCHING'],
    ['ATTACHING_VOLUME', 'TRAINING'],
    ['PREFETCHING', 'TRAINING'],
    ['TRAINING', 'CHECKPOINTING'],
    ['TRAINING', 'FINALIZING'],
    ['CHECKPOINTING', 'TRAINING'],
    ['CHECKPOINTING', 'FINALIZING'],
    ['RECOVERING', 'PROVISIONING'],
  ];

  it.each(forward)('forward path: %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
  });

  it.each([
    ['PENDING', 'TRAINING'],
    ['VALIDATING', 'STARTING'],
    ['PROVISIONING', 'TRAINING'],
    ['STARTING', 'PROVISIONING'],
    ['PREFETCHING', 'ATTACHING_VOLUME'],
    ['TRAINING', 'PREFETCHING'],
    ['TRAINING', 'PENDING'],
    ['FINALIZING', 'TRAINING'],
    ['BUILDING_IMAGE', 'STARTING'],
    ['PROVISIONING', 'BUILDING_IMAGE'],
    ['RECOVERING', 'TRAINING'],
    ['RECOVERING', 'STARTING'],
  ] satisfies [LiveStatus, LiveStatus][])('no skipping or going back: %s ↛ %s', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });

  it('walks a whole interrupted run, one legal step at a time', () => {
    const path: RunStatus[] = [
      'PENDING', 'VALIDATING', 'BUILDING_IMAGE', 'PROVISIONING', 'WAITING_FOR_CAPACITY', 'PROVISIONING', 'STARTING',
      'PREFETCHING', 'TRAINING', 'CHECKPOINTING', 'RECOVERING', 'PROVISIONING', 'STARTING',
      'ATTACHING_VOLUME', 'TRAINING', 'FINALIZING', 'SUCCEEDED',
    ];
    const illegal = path.slice(1).filter((to, i) => !canTransition(path[i] ?? 'PENDING', to));
    expect(illegal).toEqual([]);
  });

  describe('RECOVERING', () => {
    const beforeAnyInstance: LiveStatus[] = ['PENDING', 'VALIDATING', 'BUILDING_IMAGE'];

    it.each(beforeAnyInstance.map((s) => [s]))('is not reachable from %s, before any instance exists', (from) => {
      expect(canTransition(from, 'RECOVERING')).toBe(false);
    });

    it.each(
      LIVE_STATUSES.filter((s) => !beforeAnyInstance.includes(s) && s !== 'CANCELLING').map((s) => [s]),
    )('is reachable from %s, where an attempt can be lost', (from) => {
      expect(canTransition(from, 'RECOVERING')).toBe(true);
    });

    it('is not reachable from CANCELLING: a cancelled run is not resumed', () => {
      expect(canTransition('CANCELLING', 'RECOVERING')).toBe(false);
    });

    it('leads only to PROVISIONING, CANCELLING, itself or a terminal status', () => {
      const next = RUN_STATUSES.filter((to) => canTransition('RECOVERING', to));
      expect(next).toEqual(['PROVISIONING', 'RECOVERING', 'CANCELLING', ...TERMINAL_STATUSES]);
    });
  });
});
