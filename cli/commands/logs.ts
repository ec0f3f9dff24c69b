import { TERMINAL } from '../api-types';
import { printJson, sleep, type CommandContext } from '../context';

/**
 * `runctl logs RUN [-f] [--attempt N] [--tail N]`: the tail of the newest attempt's log (or of
 * the one asked for); with -f, keeps polling from where it left off, moves on to the next
 * attempt after a resume, and stops when the run has ended and the log is read to its end.
 */
export async function showLogs(context: CommandContext, runId: string, options: { follow: boolean; attempt?: number; tail?: number }): Promise<number> {
  const first = await context.client.logs(runId, { attempt: options.attempt, tail: options.tail ?? 200 });
  if (context.json && !options.follow) {
    printJson(context, first);
    return 0;
  }
  const write = (text: string) => {
    if (text !== '') process.stdout.write(text);
  };
  write(first.text);
  if (!options.follow) return 0;

  let attempt = first.attempt;
  let offset = first.nextOffset;
  for (;;) {
    const chunk = await context.client.logs(runId, { attempt, offset });
    write(chunk.text);
    offset = chunk.nextOffset;
    if (offset < chunk.size) continue; // more is stored already
    const newer = options.attempt === undefined ? chunk.attempts.find((a) => a > attempt) : undefined;
    if (newer !== undefined) {
      context.err(`--- attempt ${newer} ---`);
      attempt = newer;
      offset = 0;
      continue;
    }
    const run = await context.client.getRun(runId);
    if (TERMINAL.has(run.status)) {
      // The agent uploads the log last on exit: one more read after the end picks up its final lines.
      const last = await context.client.logs(runId, { attempt, offset });
      write(last.text);
      if (last.attempts.every((a) => a <= attempt) || options.attempt !== undefined) {
        context.err(`--- run ${runId} ended ${run.status} ---`);
        return 0;
      }
      offset = last.nextOffset;
      continue;
    }
    await sleep(context.pollMs);
  }
}
