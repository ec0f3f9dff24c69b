import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatBytes } from '../../shared/usecases/uploads';
import { printJson, type CommandContext } from '../context';
import { CliError, UsageError } from '../errors';
import { metricValue, shortTime, table } from '../render';
import { ModelDetailSchema, ModelDownloadSchema, ModelSchema, ModelsPageSchema, ModelVersionSchema, type Model, type ModelDetail, type ModelVersion } from '../research-types';

const modelPath = (name: string) => `/models/${encodeURIComponent(name)}`;

/** `runctl models register RUN --name NAME`: the run's outputs become the next version of NAME. */
export async function registerModel(context: CommandContext, runId: string, name: string | undefined): Promise<number> {
  if (name === undefined) throw new UsageError(`runctl models register needs --name NAME, e.g. runctl models register ${runId} --name digits`);
  const version = await context.client.call('POST', `${modelPath(name)}/versions`, ModelVersionSchema, { body: { runId } });
  if (context.json) {
    printJson(context, version);
    return 0;
  }
  const bytes = version.files.reduce((sum, f) => sum + f.size, 0);
  context.err(`Registered ${version.name} version ${version.version} from run ${version.lineage.runId}: ${version.files.length} file(s), ${formatBytes(bytes)}`);
  context.out(`${version.name}:${version.version}`);
  return 0;
}

/** `runctl models ls`: the caller's models (every page). */
export async function listModels(context: CommandContext): Promise<number> {
  const models: Model[] = [];
  let nextToken: string | undefined;
  do {
    const page = await context.client.call('GET', '/models', ModelsPageSchema, { query: { limit: 100, nextToken } });
    models.push(...page.models);
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  if (context.json) {
    printJson(context, { models });
    return 0;
  }
  if (models.length === 0) {
    context.err('No models yet. Register a run\'s outputs with: runctl models register RUN --name NAME');
    return 0;
  }
  context.out(table(['MODEL', 'LATEST', 'STAGES', 'UPDATED'], models.map((m) => [m.name, String(m.latestVersion), stagesText(m.stages), shortTime(m.updatedAt)])));
  return 0;
}

function stagesText(stages: Record<string, number>): string {
  const entries = Object.entries(stages).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '-' : entries.map(([stage, version]) => `${stage}=${version}`).join(',');
}

/** The stages that hold `version`. */
function stagesOf(model: Model, version: number): string {
  const held = Object.entries(model.stages)
    .filter(([, v]) => v === version)
    .map(([stage]) => stage)
    .sort();
  return held.length === 0 ? '-' : held.join(',');
}

/** `runctl models show NAME [--version N]`: the model, its versions and stage history, or one version's files and lineage. */
export async function showModel(context: CommandContext, name: string, version: number | undefined): Promise<number> {
  const detail = await context.client.call('GET', modelPath(name), ModelDetailSchema);
  if (version !== undefined) {
    const found = detail.versions.find((v) => v.version === version);
    if (found === undefined) throw new CliError(`model ${detail.model.name} has no version ${version} (it has 1 to ${detail.model.latestVersion})`);
    if (context.json) printJson(context, { ...found, stages: stagesOf(detail.model, version) === '-' ? [] : stagesOf(detail.model, version).split(',') });
    else context.out(versionText(detail.model, found));
    return 0;
  }
  if (context.json) printJson(context, detail);
  else context.out(modelText(detail));
  return 0;
}

function modelText(detail: ModelDetail): string {
  const { model } = detail;
  const lines = [`Model ${model.name}: ${detail.versions.length} version(s), latest ${model.latestVersion}; stages: ${stagesText(model.stages)}`, ''];
  lines.push(
    table(
      ['VERSION', 'CREATED', 'RUN', 'FILES', 'SIZE', 'STAGES'],
      detail.versions.map((v) => [
        String(v.version),
        shortTime(v.createdAt),
        v.lineage.runId,
        String(v.files.length),
        formatBytes(v.files.reduce((sum, f) => sum + f.size, 0)),
        stagesOf(model, v.version),
      ]),
    ),
  );
  if (detail.history.length > 0) {
    lines.push('', 'Stage history:');
    for (const change of detail.history) {
      lines.push(`  ${shortTime(change.at)}  ${change.stage}: ${change.previous === undefined ? '-' : String(change.previous)} → ${change.version}`);
    }
  }
  return lines.join('\n');
}

function versionText(model: Model, version: ModelVersion): string {
  const { lineage } = version;
  const pairs = (map: Record<string, string | number>) => {
    const entries = Object.entries(map);
    return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${typeof v === 'number' ? metricValue(v) : v}`).join(', ');
  };
  return [
    `Model ${version.name} version ${version.version} (created ${shortTime(version.createdAt)}; stages: ${stagesOf(model, version.version)})`,
    `  run              ${lineage.runId}`,
    `  code bundle      ${lineage.bundleDigest ?? '-'}`,
    `  image            ${lineage.imageDigest ?? '-'}`,
    `  data             ${lineage.dataSources.length === 0 ? '-' : lineage.dataSources.map((d) => `${d.source} → ${d.target}`).join(', ')}`,
    `  hyperparameters  ${pairs(lineage.hyperparameters)}`,
    `  final metrics    ${pairs(lineage.finalMetrics)}`,
    '',
    table(['FILE', 'SIZE', 'SHA256'], version.files.map((f) => [f.path, formatBytes(f.size), f.sha256])),
  ].join('\n');
}

/** `runctl models promote NAME VERSION --stage production`: the stage now holds that version. */
export async function promoteModel(context: CommandContext, name: string, version: number, stage: string | undefined): Promise<number> {
  if (stage === undefined) throw new UsageError(`runctl models promote needs --stage STAGE, e.g. runctl models promote ${name} ${version} --stage production`);
  const model = await context.client.call('POST', `${modelPath(name)}/promote`, ModelSchema, { body: { version, stage } });
  if (context.json) {
    printJson(context, model);
    return 0;
  }
  context.out(`${model.name} ${stage} → version ${version} (stages: ${stagesText(model.stages)})`);
  return 0;
}

/**
 * Where a file of the model goes under `dir`, or an error when its path would leave `dir`
 * (an absolute path or `..`): the file list comes from the API, and a download never writes
 * outside the directory the user named.
 */
export function targetPath(dir: string, path: string): string {
  const root = resolve(dir);
  const target = resolve(root, path);
  const inside = relative(root, target);
  if (path === '' || isAbsolute(path) || inside === '' || inside.startsWith(`..${sep}`) || inside === '..' || isAbsolute(inside)) {
    throw new CliError(`the model lists a file "${path}" whose path leaves the download directory; nothing was written for it`);
  }
  return target;
}

/** `runctl models download NAME VERSION [--to DIR]`: each file, checked against its sha256. VERSION may be a stage. */
export async function downloadModel(context: CommandContext, name: string, version: string, to: string | undefined): Promise<number> {
  const answer = await context.client.call('GET', `${modelPath(name)}/versions/${encodeURIComponent(version)}/download`, ModelDownloadSchema);
  const dir = to ?? `${answer.name}-v${answer.version}`;
  // Every path is checked before the first byte is written.
  const targets = answer.files.map((file) => ({ file, target: targetPath(dir, file.path) }));
  for (const { file, target } of targets) {
    await fetchVerified(file.url, target, file.sha256, file.path);
    if (!context.json) context.err(`  ${file.path}  ${formatBytes(file.size)}  sha256 ok`);
  }
  if (context.json) {
    printJson(context, { name: answer.name, version: answer.version, dir: resolve(dir), files: answer.files.map(({ path, size, sha256 }) => ({ path, size, sha256 })) });
    return 0;
  }
  context.err(`Downloaded ${answer.name} version ${answer.version}: ${answer.files.length} file(s), each matching its sha256`);
  context.out(resolve(dir));
  return 0;
}

/** Streams `url` to `target` through a sha256; the file appears under its name only when the digest matches. */
async function fetchVerified(url: string, target: string, sha256: string, path: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new CliError(`downloading ${path} failed: ${error instanceof Error ? error.message : String(error)}`, 1, { cause: error });
  }
  if (!response.ok || response.body === null) throw new CliError(`downloading ${path} failed: HTTP ${response.status} (the link lasts 15 minutes; run the download again)`);
  await mkdir(dirname(target), { recursive: true });
  const partial = join(dirname(target), `.${Date.now()}-${process.pid}.partial`);
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(response.body), hashing, createWriteStream(partial));
    const digest = hash.digest('hex');
    if (digest !== sha256) throw new CliError(`${path} does not match its sha256 (expected ${sha256}, got ${digest}); it was not kept`);
    await rename(partial, target);
  } finally {
    await rm(partial, { force: true });
  }
}
