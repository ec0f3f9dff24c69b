import { niceTicks, valueText, type Axis } from '../trials';
import { toneOf } from './status-badge';

/**
 * A small SVG scatter: the objective by trial, or the objective against one hyperparameter.
 * A sweep has tens to thousands of trials, not a long time series, and hyperparameters are often
 * categories (`choice(32,64)`), so this is drawn as SVG rather than with uPlot: each point is an
 * element with its own title, category axes are plain text, and everything is text nodes.
 */

export interface ScatterPoint {
  x: number | string;
  y: number;
  /** Said by the point's tooltip: which trial, and its values. */
  label: string;
  status: string;
  best?: boolean;
}

const W = 480;
const H = 230;
const M = { left: 58, right: 14, top: 12, bottom: 42 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

function scaleX(axis: Axis): { at: (x: number | string) => number; ticks: Array<{ at: number; text: string }> } {
  if (axis.kind === 'category') {
    const n = Math.max(axis.values.length, 1);
    const every = Math.ceil(n / 12);
    return {
      at: (x) => ((axis.values.indexOf(String(x)) + 0.5) / n) * PW,
      ticks: axis.values.filter((_, i) => i % every === 0).map((v) => ({ at: ((axis.values.indexOf(v) + 0.5) / n) * PW, text: v.length > 12 ? `${v.slice(0, 11)}…` : v })),
    };
  }
  const log = axis.kind === 'log';
  const f = (v: number) => (log ? Math.log10(v) : v);
  const [lo, hi] = [f(axis.min), f(axis.max)];
  // A little room each side, so the first and last points do not sit on the frame.
  const room = (hi - lo) * 0.05;
  const span = hi - lo + 2 * room || 1;
  const at = (x: number | string) => (hi === lo ? PW / 2 : ((f(Number(x)) - lo + room) / span) * PW);
  const values = log ? niceTicks(Math.floor(lo), Math.ceil(hi), Math.min(6, Math.ceil(hi) - Math.floor(lo))).filter(Number.isInteger).map((p) => 10 ** p) : niceTicks(axis.min, axis.max);
  return { at, ticks: values.filter((v) => f(v) >= lo - 1e-9 && f(v) <= hi + 1e-9).map((v) => ({ at: at(v), text: valueText(v) })) };
}

export function Scatter(props: {
  title: string;
  /** Text equivalent of the drawing, for screen readers. */
  summary: string;
  xLabel: string;
  yLabel: string;
  axis: Axis;
  points: readonly ScatterPoint[];
  /** Best value so far, drawn as a step line (objective by trial). */
  line?: ReadonlyArray<{ x: number; y: number }>;
  data?: Record<string, string>;
}) {
  const ys = props.points.map((p) => p.y);
  const [y0, y1] = ys.length === 0 ? [0, 1] : [Math.min(...ys), Math.max(...ys)];
  const pad = y1 > y0 ? (y1 - y0) * 0.06 : Math.abs(y0) * 0.1 || 1;
  const [lo, hi] = [y0 - pad, y1 + pad];
  const yAt = (y: number) => PH - ((y - lo) / (hi - lo)) * PH;
  const x = scaleX(props.axis);
  const steps = props.line ?? [];
  const path = steps.map((p, i) => `${i === 0 ? 'M' : 'H'}${x.at(p.x).toFixed(1)}${i === 0 ? ` ${yAt(p.y).toFixed(1)}` : ` V${yAt(p.y).toFixed(1)}`}`).join(' ');
  return (
    <figure class="scatter" {...props.data} data-points={props.points.length}>
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.summary}>
        <g transform={`translate(${M.left} ${M.top})`}>
          <rect class="plot-area" width={PW} height={PH} />
          {niceTicks(y0, y1, 4).map((t) => (
            <g class="tick" transform={`translate(0 ${yAt(t).toFixed(1)})`}>
              <line x2={PW} />
              <text x={-6} dy="0.32em" text-anchor="end">
                {valueText(t)}
              </text>
            </g>
          ))}
          {x.ticks.map((t) => (
            <g class="tick x" transform={`translate(${t.at.toFixed(1)} ${PH})`}>
              <line y2={5} />
              <text y={17} text-anchor="middle">
                {t.text}
              </text>
            </g>
          ))}
          <text class="axis-label" x={PW / 2} y={PH + 36} text-anchor="middle">
            {props.xLabel}
            {props.axis.kind === 'log' ? ' (log scale)' : ''}
          </text>
          <text class="axis-label" transform={`translate(${-46} ${PH / 2}) rotate(-90)`} text-anchor="middle">
            {props.yLabel}
          </text>
          {path !== '' && <path class="best-line" d={path} />}
          {props.points.map((p) => (
            <circle class={`pt ${toneOf(p.status)}${p.best === true ? ' best' : ''}`} cx={x.at(p.x).toFixed(1)} cy={yAt(p.y).toFixed(1)} r={p.best === true ? 6 : 4} data-status={p.status}>
              <title>{p.label}</title>
            </circle>
          ))}
        </g>
      </svg>
    </figure>
  );
}
