/** Plain-text output: aligned tables, a progress bar and a small line plot for the terminal. */

/** Columns padded to their widest cell; the last column is not padded. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `2026-11-25T06:00:00.000Z` → `2026-11-25 06:00:00Z`. */
export function shortTime(iso: string | undefined): string {
  if (iso === undefined) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** 3725 s → `1h02m`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

export function usd(amount: number): string {
  return `$${amount.toFixed(2)}`;
}

/** A number as a metric shows: 4 significant digits, integers as they are. */
export function metricValue(value: unknown): string {
  if (typeof value !== 'number') return value === undefined ? '' : String(value);
  if (Number.isInteger(value)) return String(value);
  return Number(value.toPrecision(4)).toString();
}

/** `[##########----------] 12/50` */
export function progressBar(done: number, total: number, width = 30): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`;
}

/**
 * A line plot of y over x in a box of `width` × `height` characters, with the y range on the
 * left and the x range below. Points that share a column are averaged.
 */
export function plot(points: ReadonlyArray<{ x: number; y: number }>, options: { width?: number; height?: number; label?: string } = {}): string {
  const width = options.width ?? 60;
  const height = options.height ?? 12;
  const finite = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  if (finite.length === 0) return '(nothing to plot)';
  const xs = finite.map((p) => p.x);
  const ys = finite.map((p) => p.y);
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  const [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
  const column = (x: number) => (xMax === xMin ? 0 : Math.round(((x - xMin) / (xMax - xMin)) * (width - 1)));
  const row = (y: number) => (yMax === yMin ? Math.floor(height / 2) : Math.round(((yMax - y) / (yMax - yMin)) * (height - 1)));

  const sums = new Map<number, { sum: number; count: number }>();
  for (const p of finite) {
    const c = column(p.x);
    const entry = sums.get(c) ?? { sum: 0, count: 0 };
    sums.set(c, { sum: entry.sum + p.y, count: entry.count + 1 });
  }
  const grid = Array.from({ length: height }, () => Array.from({ length: width }, () => ' '));
  for (const [c, { sum, count }] of sums) {
    const r = row(sum / count);
    const cells = grid[r];
    if (cells !== undefined) cells[c] = '*';
  }
  const top = metricValue(yMax);
  const bottom = metricValue(yMin);
  const margin = Math.max(top.length, bottom.length);
  const lines = grid.map((cells, r) => {
    const label = r === 0 ? top : r === height - 1 ? bottom : '';
    return `${label.padStart(margin)} |${cells.join('').trimEnd()}`;
  });
  const axis = `${' '.repeat(margin)} +${'-'.repeat(width)}`;
  const xLabels = `${' '.repeat(margin + 2)}${metricValue(xMin)}`;
  const xRight = metricValue(xMax);
  const under = `${xLabels}${xRight.padStart(Math.max(1, width - metricValue(xMin).length))}`;
  return [...(options.label === undefined ? [] : [options.label]), ...lines, axis, under].join('\n');
}
