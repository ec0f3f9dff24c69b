import { z } from 'zod';
import { ExperimentNameSchema } from '../domain/experiment';
import { toFieldIssues } from '../domain/run-spec';
import { ConflictError, NotFoundError, RunInvalidError } from '../errors';
import type { Lineage, Model, ModelBlobs, ModelVersion, Models, StageChange } from '../ports/models';
import type { RunStore } from '../ports/run-store';
import { getOwnedRun } from './query-runs';

/**
 * The model registry: `runctl models register RUN --name NAME` makes version n of NAME from the
 * run's outputs, each file copied to its content address so the run can expire without breaking
 * the version; stages (`production`, …) point at one version each, and every move is kept.
 * Everything is the owner's: another owner's model is not found.
 */

export interface ModelDeps {
  store: RunStore;
  models: Models;
  blobs: ModelBlobs;
  clock: () => Date;
}

const StageSchema = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be a stage name like production or staging');
const RegisterBodySchema = z.object({ runId: z.string().min(1, 'is required: the run whose outputs become the version') });
const PromoteBodySchema = z.object({ version: z.number().int().min(1, 'must be a version number (1, 2, …)'), stage: StageSchema });

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issues = toFieldIssues(parsed.error);
  throw new RunInvalidError(`Invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

function modelName(name: string): string {
  const parsed = ExperimentNameSchema.safeParse(name);
  if (!parsed.success) throw new NotFoundError(`Model ${name} not found`);
  return parsed.data;
}

/** Registers the run's outputs as the next version of `name`. */
export async function registerModel(request: { owner: string; name: string; body: unknown }, deps: ModelDeps): Promise<ModelVersion> {
  const nameCheck = ExperimentNameSchema.safeParse(request.name);
  if (!nameCheck.success) {
    throw new RunInvalidError(`Invalid model name: ${nameCheck.error.issues[0]?.message ?? ''}`, [{ path: 'name', message: nameCheck.error.issues[0]?.message ?? 'is invalid' }]);
  }
  const { runId } = parse(RegisterBodySchema, request.body, 'request');
  const run = await getOwnedRun({ owner: request.owner, runId }, deps);
  const outputs = await deps.blobs.listOutputs(run.runId);
  if (outputs.length === 0) {
    throw new ConflictError(`Run ${run.runId} (${run.status}) has no outputs to register; a run writes them to RUNCTL_OUTPUT_DIR`);
  }
  const files = [];
  for (const output of outputs) {
    const stored = await deps.blobs.storeContentAddressed(output.key);
    files.push({ path: output.path, size: stored.size, sha256: stored.sha256 });
  }
  const bundle = /\/bundles\/([0-9a-f]{64})\.tar\.gz$/.exec(run.spec.code.bundle)?.[1];
  const image = typeof run.spec.docker === 'object' ? run.spec.docker.image : undefined;
  const lineage: Lineage = {
    runId: run.runId,
    bundleDigest: bundle === undefined ? undefined : `sha256:${bundle}`,
    dataSources: run.spec.data.map((d) => ({ source: d.source, target: d.target })),
    // Dataset manifests are not written yet (docs/models.md): the list stays empty until they are.
    dataManifests: [],
    hyperparameters: run.spec.hyperparameters,
    finalMetrics: run.metrics?.final ?? {},
    imageDigest: image !== undefined && /@sha256:[0-9a-f]{64}$/.test(image) ? image.slice(image.indexOf('@') + 1) : undefined,
  };
  const now = deps.clock().toISOString();
  const number = await deps.models.nextVersion(request.owner, nameCheck.data, now);
  const version: ModelVersion = { name: nameCheck.data, version: number, createdAt: now, files, lineage };
  await deps.models.putVersion(request.owner, version);
  return version;
}

/** The owner's models. */
export async function listModels(request: { owner: string; query: unknown }, deps: Pick<ModelDeps, 'models'>): Promise<{ models: Model[]; nextToken?: string }> {
  const query = parse(z.object({ limit: z.coerce.number().int().min(1).max(100).default(100), nextToken: z.string().min(1).optional() }), request.query, 'query');
  const page = await deps.models.list(request.owner, query);
  return { models: page.items, nextToken: page.nextToken };
}

async function ownedModel(owner: string, name: string, models: Models): Promise<Model> {
  const model = await models.get(owner, modelName(name));
  if (model === undefined) throw new NotFoundError(`Model ${name} not found`);
  return model;
}

/** A model with its versions and the history of its stages. */
export async function showModel(request: { owner: string; name: string }, deps: Pick<ModelDeps, 'models'>): Promise<{ model: Model; versions: ModelVersion[]; history: StageChange[] }> {
  const model = await ownedModel(request.owner, request.name, deps.models);
  const [versions, history] = await Promise.all([deps.models.versions(request.owner, model.name), deps.models.history(request.owner, model.name)]);
  return { model, versions, history };
}

/** Points a stage at a version (one version per stage); the move is kept in the history. */
export async function promoteModel(request: { owner: string; name: string; body: unknown }, deps: Pick<ModelDeps, 'models' | 'clock'>): Promise<Model> {
  const model = await ownedModel(request.owner, request.name, deps.models);
  const { version, stage } = parse(PromoteBodySchema, request.body, 'request');
  if ((await deps.models.version(request.owner, model.name, version)) === undefined) {
    throw new NotFoundError(`Model ${model.name} has no version ${version}`);
  }
  const previous = model.stages[stage];
  await deps.models.promote(request.owner, model.name, { stage, version, previous, at: deps.clock().toISOString() }, previous);
  return ownedModel(request.owner, model.name, deps.models);
}

/** The files of a version (or of the version a stage holds), each with a time-limited URL and the sha256 to check it against. */
export async function downloadModel(
  request: { owner: string; name: string; version: string },
  deps: Pick<ModelDeps, 'models' | 'blobs'>,
): Promise<{ name: string; version: number; files: Array<{ path: string; size: number; sha256: string; url: string }> }> {
  const model = await ownedModel(request.owner, request.name, deps.models);
  const number = /^\d+$/.test(request.version) ? Number(request.version) : model.stages[request.version];
  const version = number === undefined ? undefined : await deps.models.version(request.owner, model.name, number);
  if (version === undefined) throw new NotFoundError(`Model ${model.name} has no version or stage ${request.version}`);
  const files = [];
  for (const file of version.files) files.push({ ...file, url: await deps.blobs.downloadUrl(file.sha256) });
  return { name: model.name, version: version.version, files };
}
