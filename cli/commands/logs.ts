import { TERMINAL } from '../api-types';
import { printJson, sleep, type CommandContext } from '../context';

/** How often `logs -f` asks for more: the agent ships what the script prints within a second. */
const FOLLOW_POLL_MS = 500;

/**
 * `runctl logs RUN [-f] [--attempt N] [--tail N]`: every attempt's log, oldest first, each after
 * a `--- attempt N ---` header on stderr (stdout stays the log itself), the last N lines of each;
 * or only the attempt asked for. With -f, keeps reading from where it left off, moves on to each
 * new attempt, and stops when the run has ended and its log is read to the end.
 */
export async function showLogs(context: CommandContext, runId: string, options: { follow: boolean; attempt?: number; tail?: number; node?: number }): Promise<number> {
  const tail = options.tail ?? 200;
  // `--node r`: that node's log of a multi-node run (rank 0's is the default).
  const node = options.node;
  const first = await context.client.logs(runId, { attempt: options.attempt, tail, node });
  const write = (text: string) => {
    if (text !== '') process.stdout.write(text);
  };
  const header = (attempt: number) => context.err(`--- attempt ${attempt} ---`);

  if (options.attempt !== undefined || first.attempts.length <= 1) {
    if (context.json) {
      printJson(context, first);
      return 0;
    }
    if (options.attempt === undefined && first.attempts.length === 1) header(first.attempt);
    write(first.text);
    if (!options.follow) return 0;
    return follow(context, runId, first.attempt, first.nextOffset, options.attempt !== undefined, write, header, first.attempts, node);
  }

  // Every attempt, oldest first: the newest one's chunk is the one already read.
  const earlier = first.attempts.filter((a) => a < first.attempt);
  const chunks = [...(await Promise.all(earlier.map((attempt) => context.client.logs(runId, { attempt, tail, node })))), first];
  if (context.json) {
    printJson(context, { runId, attempts: chunks });
    return 0;
  }
  for (const chunk of chunks) {
    header(chunk.attempt);
    write(chunk.text);
  }
  if (!options.follow) return 0;
  return follow(context, runId, first.attempt, first.nextOffset, false, write, header, first.attempts, node);
}

async function follow(
  context: CommandContext,
  runId: string,
  from: number,
  fromOffset: number,
  onlyThisAttempt: boolean,
  write: (text: string) => void,
  header: (attempt: number) => void,
  known: number[],
  node: number | undefined,
): Promise<number> {
  const pollMs = Math.min(context.pollMs, FOLLOW_POLL_MS);
  let attempt = from;
  let offset = fromOffset;
  // Before its first attempt a run has no attempt to name: the API then reads the one to come.
  let attempts = known;
  const which = () => (attempts.includes(attempt) ? attempt : undefined);
  for (;;) {
    const chunk = await context.client.logs(runId, { attempt: which(), offset, node });
    attempts = chunk.attempts;
    write(chunk.text);
    offset = chunk.nextOffset;
    if (offset < chunk.size) continue; // more is stored already
    const newer = onlyThisAttempt ? undefined : chunk.attempts.find((a) => a > attempt);
    if (newer !== undefined) {
      header(newer);
      attempt = newer;
      offset = 0;
      continue;
    }
    const run = await context.client.getRun(runId);
    if (TERMINAL.has(run.status)) {
      // The agent uploads the log last on exit: one more read after the end picks up its final lines.
      const last = await context.client.logs(runId, { attempt: which(), offset, node });
      write(last.text);
      if (last.attempts.every((a) => a <= attempt) || onlyThisAttempt) {
        context.err(`--- run ${runId} ended ${run.status} ---`);
        return 0;
      }
      offset = last.nextOffset;
      continue;
    }
    await sleep(pollMs);
  }
}
