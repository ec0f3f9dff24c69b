import { spawn } from 'node:child_process';
import type { CommandContext } from '../context';

/**
 * `runctl ui [--port 4568] [--open]`: serves the dashboard on 127.0.0.1 until Ctrl-C. Its API
 * calls go through this CLI's client, signed as every other command's (docs/ui.md).
 */
export async function runUi(context: CommandContext, options: { port: number; open: boolean; local: boolean }): Promise<number> {
  const [{ loadAssets }, { startUiServer }] = await Promise.all([import('../../ui/server/assets'), import('../../ui/server/ui-server')]);
  const assets = await loadAssets();
  const ui = await startUiServer({
    api: context.client,
    assets,
    port: options.port,
    local: options.local,
    onRefused: (line) => context.err(`runctl ui: refused ${line}`),
  });
  context.out(`runctl ui: the dashboard is on ${ui.url} (API ${context.client.endpoint}${options.local ? ', local' : ', signed with your AWS credentials'})`);
  context.out('Press Ctrl-C to stop.');
  if (options.open) openBrowser(ui.url, context);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await ui.close();
  return 0;
}

/** Opens the URL with the desktop's opener; when there is none, the printed URL is the way in. */
function openBrowser(url: string, context: CommandContext): void {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(command, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => context.err(`Could not start ${command}; open ${url} in a browser.`));
  child.unref();
}
