import { checkpointId, duration, statusWords, time } from '../format';
import { END_REASONS, INTERRUPTIONS, TERMINAL, type AttemptNode, type Checkpoint, type Run } from '../types';

/**
 * The run over time: the phases it went through and, below them, one bar per attempt, with
 * each interruption (why the attempt ended) and each resume point (the checkpoint the next
 * attempt started from). The list under the drawing says the same in words, for keyboards and
 * screen readers.
 */

interface Segment {
  status: string;
  from: number;
  to: number;
}

/** Consecutive phases, a repeat (a retried step) folded into the phase before it. */
export function phaseSegments(run: Run, now: number): Segment[] {
  const entries = [{ status: 'PENDING', at: run.createdAt }, ...(run.phases ?? [])];
  const segments: Segment[] = [];
  for (const entry of entries) {
    const at = Date.parse(entry.at);
    if (Number.isNaN(at)) continue;
    const last = segments.at(-1);
    if (last !== undefined && last.status === entry.status) continue;
    if (last !== undefined) last.to = at;
    segments.push({ status: entry.status, from: at, to: at });
  }
  const last = segments.at(-1);
  if (last !== undefined) last.to = TERMINAL.has(last.status) ? last.from : now;
  return segments;
}

/** The checkpoint an attempt resumed from, with its step or epoch when the list knows it. */
export function resumePoint(uri: string, checkpoints: readonly Checkpoint[]): string {
  const checkpoint = checkpoints.find((c) => c.uri === uri || c.uri.replace(/\/$/, '') === uri.replace(/\/$/, ''));
  const at = checkpoint?.epoch !== undefined ? ` (epoch ${checkpoint.epoch})` : checkpoint?.step !== undefined ? ` (step ${checkpoint.step})` : '';
  return `checkpoint ${checkpoint?.id ?? checkpointId(uri)}${at}`;
}

export function Timeline({ run, checkpoints, now }: { run: Run; checkpoints: readonly Checkpoint[]; now: number }) {
  const segments = phaseSegments(run, now);
  const start = Date.parse(run.createdAt);
  const ends = [now, ...segments.map((s) => s.to), ...run.attempts.map((a) => Date.parse(a.endedAt ?? a.startedAt))];
  const end = TERMINAL.has(run.status) ? Math.max(...segments.map((s) => s.to), ...ends.slice(1).filter(Number.isFinite)) : now;
  const span = Math.max(end - start, 1000);
  const pct = (t: number) => `${(Math.min(Math.max((t - start) / span, 0), 1) * 100).toFixed(3)}%`;
  const width = (a: number, b: number) => `${(Math.max((Math.min(b, end) - Math.max(a, start)) / span, 0.002) * 100).toFixed(3)}%`;

  return (
    <figure class="timeline" aria-labelledby="timeline-caption">
      <figcaption id="timeline-caption">
        Timeline · {time(run.createdAt)} → {TERMINAL.has(run.status) ? time(new Date(end).toISOString()) : 'now'} ({duration(end - start)})
      </figcaption>
      <svg width="100%" height="128" role="img" aria-label={`Phases and attempts of run ${run.runId}`}>
        <text x="0" y="14" class="row-label">
          phases
        </text>
        {segments.map((s) => (
          <g class={`phase phase-${s.status}`} data-phase={s.status}>
            <rect x={pct(s.from)} y="20" width={width(s.from, Math.max(s.to, s.from + span * 0.004))} height="22">
              <title>{`${statusWords(s.status)} · ${time(new Date(s.from).toISOString())} · ${duration(s.to - s.from)}`}</title>
            </rect>
          </g>
        ))}
        <text x="0" y="62" class="row-label">
          attempts
        </text>
        {run.attempts.map((a) => {
          const from = Date.parse(a.startedAt);
          const to = a.endedAt === undefined ? now : Date.parse(a.endedAt);
          const interrupted = a.endReason !== undefined && INTERRUPTIONS.has(a.endReason);
          return (
            <g class={`attempt${interrupted ? ' interrupted' : ''}`} data-attempt={a.attempt}>
              <rect x={pct(from)} y="68" width={width(from, to)} height="22" rx="3">
                <title>{`attempt ${a.attempt} · ${a.instanceType ?? ''} ${a.spot ? 'spot' : 'on-demand'} · ${duration(to - from)}${a.endReason === undefined ? '' : ` · ${END_REASONS[a.endReason] ?? a.endReason}`}`}</title>
              </rect>
              <text x={pct(from)} dx="4" y="84" class="bar-label">
                #{a.attempt}
              </text>
              {a.resumeFrom !== undefined && (
                <g class="resume-mark">
                  <line x1={pct(from)} x2={pct(from)} y1="64" y2="118" />
                  <text x={pct(from)} dx="4" y="112">
                    ↻ resumed from {resumePoint(a.resumeFrom, checkpoints)}
                  </text>
                </g>
              )}
              {interrupted && a.endedAt !== undefined && (
                <g class="interruption-mark">
                  <line x1={pct(to)} x2={pct(to)} y1="64" y2="96" />
                  <text x={pct(to)} dx="-4" y="104" text-anchor="end">
                    ⚡ {END_REASONS[a.endReason ?? ''] ?? a.endReason}
                  </text>
                </g>
              )}
            </g>
          );
        })}
      </svg>
      <ol class="attempts" aria-label="Attempts">
        {run.attempts.map((a) => {
          const to = a.endedAt === undefined ? now : Date.parse(a.endedAt);
          return (
            <li data-attempt={a.attempt}>
              <strong>Attempt {a.attempt}</strong> · {a.instanceType ?? 'instance pending'} {a.spot ? 'spot' : 'on-demand'}
              {a.availabilityZone === undefined ? '' : ` in ${a.availabilityZone}`} · {time(a.startedAt)} → {a.endedAt === undefined ? 'now' : time(a.endedAt)} (
              {duration(to - Date.parse(a.startedAt))})
              {a.resumeFrom !== undefined && <span class="resume"> · resumed from {resumePoint(a.resumeFrom, checkpoints)}</span>}
              {a.endReason !== undefined && (
                <span class={INTERRUPTIONS.has(a.endReason) ? 'interruption' : 'ended'}> · ended: {END_REASONS[a.endReason] ?? a.endReason}</span>
              )}
              {a.nodes !== undefined && a.nodes.length > 1 && <Nodes attempt={a.attempt} nodes={a.nodes} />}
            </li>
          );
        })}
      </ol>
    </figure>
  );
}

/** The nodes of a multi-node attempt: which were kept from the attempt before, which one was warned or lost, how each ended. */
function Nodes({ attempt, nodes }: { attempt: number; nodes: AttemptNode[] }) {
  return (
    <ul class="nodes" aria-label={`Nodes of attempt ${attempt}`}>
      {nodes.map((n) => {
        const notes = [
          n.launchedForAttempt < attempt ? `kept from attempt ${n.launchedForAttempt}` : undefined,
          n.warnedAt !== undefined ? 'warned' : undefined,
          n.lostAt !== undefined ? 'lost' : undefined,
          n.outcome === undefined ? undefined : n.outcome.kind === 'SUCCEEDED' ? 'succeeded' : `failed (${n.outcome.error ?? 'error'})`,
          n.releasedAt !== undefined ? 'released' : undefined,
        ].filter((note) => note !== undefined);
        return (
          <li data-rank={n.rank}>
            rank {n.rank} · {n.instanceType} in {n.availabilityZone} · <span class="mono">{n.instanceId}</span>
            {notes.length > 0 && ` · ${notes.join(', ')}`}
          </li>
        );
      })}
    </ul>
  );
}
