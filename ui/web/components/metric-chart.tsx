import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { ChartData } from '../metrics';

/** Series colours, one per attempt; readable on light and dark backgrounds. */
const COLOURS = ['#2f7ed8', '#e4572e', '#29a36a', '#a259c9', '#d4a017', '#17a2b8'];

/**
 * One metric over steps, a line per attempt, with each resume point marked by a dashed line.
 * uPlot draws to a canvas: 10,000 points cost it a few milliseconds. The chart is made once and
 * fed new columns with setData, so following a live run never rebuilds it.
 */
export function MetricChart({ metric, axis, data }: { metric: string; axis: string; data: ChartData }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const resumes = useRef(data.resumes);
  resumes.current = data.resumes;
  const shape = data.series.map((s) => s.attempt).join(',');

  useEffect(() => {
    const element = box.current;
    if (element === null) return;
    const width = Math.max(element.clientWidth, 320);
    const options: uPlot.Options = {
      width,
      height: 220,
      scales: { x: { time: false } },
      axes: [
        { label: axis, stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' }, ticks: { stroke: 'rgba(128,128,128,0.4)' } },
        { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' }, ticks: { stroke: 'rgba(128,128,128,0.4)' }, size: 60 },
      ],
      series: [
        { label: axis },
        ...data.series.map((s, i) => ({ label: `attempt ${s.attempt}`, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: false, points: { show: false } })),
      ],
      legend: { live: true },
      hooks: {
        draw: [
          (u: uPlot) => {
            const ctx = u.ctx;
            ctx.save();
            ctx.setLineDash([6, 4]);
            ctx.strokeStyle = '#e4572e';
            ctx.fillStyle = '#e4572e';
            ctx.lineWidth = 1.5 * uPlot.pxRatio;
            ctx.font = `${11 * uPlot.pxRatio}px system-ui, sans-serif`;
            for (const resume of resumes.current) {
              const x = Math.round(u.valToPos(resume.x, 'x', true));
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
              ctx.fillText(`resumed (attempt ${resume.attempt})`, x + 4 * uPlot.pxRatio, u.bbox.top + 12 * uPlot.pxRatio);
            }
            ctx.restore();
          },
        ],
      },
    };
    const chart = new uPlot(options, [data.xs, ...data.series.map((s) => s.ys)] as uPlot.AlignedData, element);
    plot.current = chart;
    const observer = new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 320), height: 220 }));
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = undefined;
    };
    // A new attempt is a new series: the chart is rebuilt then, and only then.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, axis]);

  useEffect(() => {
    plot.current?.setData([data.xs, ...data.series.map((s) => s.ys)] as uPlot.AlignedData);
  }, [data]);

  const last = data.series.at(-1)?.ys.findLast((y) => y !== null);
  return (
    <figure class="chart" data-metric={metric} data-points={data.points} data-resumes={data.resumes.length}>
      <figcaption>
        <strong>{metric}</strong> over {axis} · {data.points} points
        {last !== undefined && last !== null ? ` · latest ${formatValue(last)}` : ''}
        {data.resumes.length > 0 ? ` · resumed ${data.resumes.map((r) => `at ${axis} ${r.x}`).join(', ')}` : ''}
      </figcaption>
      <div ref={box} class="plot" role="img" aria-label={`Chart of ${metric} over ${axis}, ${data.points} points, ${data.series.length} attempt(s)`} />
    </figure>
  );
}

function formatValue(value: number): string {
  return Math.abs(value) >= 1000 || Math.abs(value) < 0.001 ? value.toExponential(3) : value.toPrecision(4);
}
