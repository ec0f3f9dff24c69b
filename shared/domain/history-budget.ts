/**
 * The event budget of an execution. A Step Functions standard execution ends, outside every
 * Catch, when its history reaches 25,000 events; a run whose execution died that way would stay
 * "live" on its record with its instance running. So every loop of a machine is bounded by a
 * number of passes, and those numbers are chosen so that the worst case fits:
 *
 *   run overhead + retry reserve + max attempts × (attempt path + Σ loop passes × events per pass) ≤ 25,000
 *
 * The events each state writes (Step Functions developer guide, "Execution history events"):
 * a Lambda task 5 (TaskStateEntered, LambdaFunctionScheduled, Started, Succeeded,
 * TaskStateExited), a callback or .sync task 6 (TaskScheduled, Started, Submitted, Succeeded in
 * between), a Wait, Choice or Pass 2, and each retry of a Lambda task 3 more (Failed, Scheduled,
 * Started). test/infra/history-budget.test.ts reads the ASL files and checks the constants below
 * against them, so a state added to a loop fails that test until the budget is redone.
 *
 * A loop polls at its base interval while its share of the budget allows that for its whole
 * window; when the share is smaller (a spec that allows very many attempts), the pause grows
 * geometrically from the base so that the passes allowed still span the window: a short copy is
 * still seen within seconds, a long one at a coarser grain.
 */

/** Step Functions' hard limit on an execution's history. */
export const HISTORY_EVENT_LIMIT = 25_000;

/** Events written by one state of each kind, and by one retry of a Lambda task. */
export const STATE_EVENTS = { lambdaTask: 5, integrationTask: 6, wait: 2, choice: 2, pass: 2, retry: 3, execution: 2 } as const;

/**
 * Events kept aside for retried tasks (throttling, Lambda service errors): about 1,300 retries
 * in one execution. Retries are not counted pass by pass; this reserve is what they may use.
 */
export const RETRY_RESERVE_EVENTS = 4_000;

/** train-run, once per run: execution start and end, ValidateRun, EnsureImage and its Choice, a nested build and its explanation, FinalizeArtifacts, FinishRun, its Choice and the final state. */
export const TRAIN_RUN_FIXED_EVENTS = 41;
/**
 * train-run, once per attempt, the wait for the replacement launched on the previous attempt's
 * warning: AwaitReplacement (a callback task), AdoptReplacement and IsInstanceLaunched again.
 */
export const REPLACEMENT_WAIT_EVENTS = STATE_EVENTS.integrationTask + STATE_EVENTS.lambdaTask + STATE_EVENTS.choice;
/**
 * train-run, once per attempt without its loops: ProvisionInstance and its Choice, the wait for a
 * replacement (REPLACEMENT_WAIT_EVENTS), the readiness reset, the volume Choice, AttachVolume and
 * its Choice, PrefetchData and its Choice, LaunchTraining, DecideRecovery, ReleaseResources, the
 * volume Choice, ReleaseVolume, the next-attempt Choice and PrepareNextAttempt.
 */
export const TRAIN_RUN_ATTEMPT_EVENTS = 52 + REPLACEMENT_WAIT_EVENTS;
/** One pass of a Wait → check task → Choice loop (readiness, volume mount, prefetch; the prewarm and build polls). */
export const POLL_PASS_EVENTS = STATE_EVENTS.wait + STATE_EVENTS.lambdaTask + STATE_EVENTS.choice;
/** One pass of the capacity loop: Wait, Pass, ProvisionInstance, its Choice. */
export const CAPACITY_PASS_EVENTS = STATE_EVENTS.wait + STATE_EVENTS.pass + STATE_EVENTS.lambdaTask + STATE_EVENTS.choice;

/** A bounded polling loop: at most `maxPolls` passes, the first pause `baseSeconds`, spanning `windowSeconds`. */
export interface PollLoop {
  baseSeconds: number;
  windowSeconds: number;
  maxPolls: number;
}

/**
 * The growth factor r ≥ 1 of the pauses (base, base·r, base·r², …) such that `maxPolls` pauses
 * add up to at least the window. 1 when polling at the base interval already spans it.
 */
export function pollGrowth(loop: PollLoop): number {
  const { baseSeconds, windowSeconds, maxPolls } = loop;
  if (maxPolls < 1) throw new RangeError('a polling loop needs at least one poll');
  if (baseSeconds * maxPolls >= windowSeconds) return 1;
  const span = (r: number): number => (baseSeconds * (r ** maxPolls - 1)) / (r - 1);
  let low = 1;
  let high = 2;
  while (span(high) < windowSeconds) high *= 2;
  for (let i = 0; i < 60; i += 1) {
    const mid = (low + high) / 2;
    if (span(mid) >= windowSeconds) high = mid;
    else low = mid;
  }
  return high;
}

/** The pause before poll number `pollsDone + 1` (whole seconds, at least the base). */
export function pollWaitSeconds(loop: PollLoop, pollsDone: number): number {
  return Math.max(loop.baseSeconds, Math.ceil(loop.baseSeconds * pollGrowth(loop) ** pollsDone));
}

/**
 * The pause before the next try of a loop timed by the time already spent (the capacity wait):
 * with geometric pauses, each pause is the base plus (r − 1) times the time waited so far, so no
 * more than `maxPolls` tries fit in the window.
 */
export function pauseAfterWaiting(loop: PollLoop, waitedSeconds: number): number {
  return Math.ceil(loop.baseSeconds + (pollGrowth(loop) - 1) * Math.max(0, waitedSeconds));
}

/** The spec's recovery limits that bound a run's attempts. */
export interface AttemptLimits {
  maxInterruptions: number;
  maxRestartsOnError: number;
}

/**
 * Most attempts a run can make (see shared/domain/recovery.ts): one retry per interruption up to
 * `maxInterruptions`, one more onto on-demand when the interruptions are used up, one per
 * allowed restart after a script failure, and the last attempt.
 */
export function maxAttempts(limits: AttemptLimits): number {
  return limits.maxInterruptions + 1 + limits.maxRestartsOnError + 1;
}

/** The loops of one train-run attempt, each with the most passes it would ever want. */
export interface AttemptLoopNeeds {
  readiness: PollLoop;
  capacity: PollLoop;
  /** Only for a run with a dataset volume. */
  volume?: PollLoop;
  /** Only for a run with data to copy. */
  prefetch?: PollLoop;
}

export type AttemptLoops = AttemptLoopNeeds;

/** Events one attempt may spend in its loops when the run can make `attempts` attempts. */
export function attemptLoopEvents(attempts: number): number {
  const perAttempt = Math.floor((HISTORY_EVENT_LIMIT - RETRY_RESERVE_EVENTS - TRAIN_RUN_FIXED_EVENTS) / attempts);
  return perAttempt - TRAIN_RUN_ATTEMPT_EVENTS;
}

/**
 * Shares one attempt's loop events among its loops: a loop that needs fewer passes than an even
 * share gets what it needs and leaves the rest to the others. Every loop keeps at least two
 * passes and its window; only its pass count (and so its pauses) shrinks.
 */
export function shareAttemptLoops(needs: AttemptLoopNeeds, attempts: number): AttemptLoops {
  const entries = (['readiness', 'capacity', 'volume', 'prefetch'] as const).flatMap((name) => {
    const loop = needs[name];
    return loop === undefined ? [] : [{ name, loop, cost: name === 'capacity' ? CAPACITY_PASS_EVENTS : POLL_PASS_EVENTS }];
  });
  entries.sort((a, b) => a.loop.maxPolls * a.cost - b.loop.maxPolls * b.cost);
  let events = attemptLoopEvents(attempts);
  const shared: AttemptLoops = { ...needs };
  entries.forEach((entry, i) => {
    const share = Math.floor(events / (entries.length - i));
    const polls = Math.max(2, Math.min(entry.loop.maxPolls, Math.floor(share / entry.cost)));
    events -= polls * entry.cost;
    shared[entry.name] = { ...entry.loop, maxPolls: polls };
  });
  return shared;
}

/** Worst-case events of one train-run attempt with these loop bounds. */
export function attemptEvents(loops: AttemptLoops): number {
  const poll = (loop: PollLoop | undefined): number => (loop === undefined ? 0 : loop.maxPolls * POLL_PASS_EVENTS);
  return (
    TRAIN_RUN_ATTEMPT_EVENTS +
    loops.capacity.maxPolls * CAPACITY_PASS_EVENTS +
    poll(loops.readiness) +
    poll(loops.volume) +
    poll(loops.prefetch)
  );
}
