import type { MetricPoint } from '../api-types';
import { printJson, type CommandContext } from '../context';
import { metricValue, plot, shortTime, table } from '../render';

async function allMetrics(context: CommandContext, runId: string): Promise<MetricPoint[]> {
  const points: MetricPoint[] = [];
  let nextToken: string | undefined;
  do {
    const page = await context.client.metrics(runId, { nextToken, limit: 5000 });
    points.push(...page.metrics);
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  return points;
}

/** Numeric metric names in the order they first appear (bookkeeping fields first). */
function metricNames(points: readonly MetricPoint[]): string[] {
  const names = new Set<string>();
  for (const point of points) for (const [key, value] of Object.entries(point)) if (key !== 'ts' && typeof value === 'number') names.add(key);
  const order = ['attempt', 'epoch', 'step'];
  return [...order.filter((n) => names.has(n)), ...[...names].filter((n) => !order.includes(n))];
}

/** `runctl metrics RUN [--metric loss] [--last N]`: a table of the newest points and a plot of one metric over steps. */
export async function showMetrics(context: CommandContext, runId: string, options: { metric?: string; last?: number }): Promise<number> {
  const points = await allMetrics(context, runId);
  if (context.json) {
    printJson(context, { runId, metrics: points });
    return 0;
  }
  if (points.length === 0) {
    context.out(`No metrics yet for ${runId}. The agent ships them within a second of the print; print JSON lines like {"step": 10, "loss": 0.5} from the script, or set metricDefinitions in the spec.`);
    return 0;
  }
  const names = metricNames(points);
  const shown = points.slice(-(options.last ?? 20));
  context.out(table(['TIME', ...names], shown.map((p) => [typeof p.ts === 'string' ? shortTime(p.ts) : '-', ...names.map((n) => metricValue(p[n]))])));
  const metric = options.metric ?? (names.includes('loss') ? 'loss' : names.find((n) => !['attempt', 'epoch', 'step'].includes(n)));
  if (metric === undefined) return 0;
  const xName = names.includes('step') ? 'step' : names.includes('epoch') ? 'epoch' : undefined;
  const series = points.flatMap((p, i) => {
    const y = p[metric];
    const x = xName === undefined ? i : p[xName];
    return typeof y === 'number' && typeof x === 'number' ? [{ x, y }] : [];
  });
  context.out('');
  context.out(plot(series, { label: `${metric} over ${xName ?? 'samples'} (${series.length} points)` }));
  return 0;
}

/** `runctl checkpoints RUN`: complete checkpoints, newest first; `*` marks the one a resume starts from. */
export async function showCheckpoints(context: CommandContext, runId: string): Promise<number> {
  const list = await context.client.checkpoints(runId);
  if (context.json) {
    printJson(context, list);
    return 0;
  }
  if (list.checkpoints.length === 0) {
    context.out(`No complete checkpoints yet for ${runId}. The script writes them to $RUNCTL_CHECKPOINT_DIR; the agent uploads them every checkpoint interval.`);
    return 0;
  }
  context.out(
    table(
      ['', 'CHECKPOINT', 'ATTEMPT', 'STEP', 'EPOCH', 'CREATED', 'URI'],
      list.checkpoints.map((c) => [
        c.latest === true ? '*' : '',
        c.id ?? '-',
        String(c.attempt),
        c.step === undefined ? '-' : String(c.step),
        c.epoch === undefined ? '-' : String(c.epoch),
        shortTime(c.createdAt),
        c.uri,
      ]),
    ),
  );
  return 0;
}
