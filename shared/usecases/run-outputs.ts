import { z } from 'zod';
import { S3Artifacts } from '../adapters/s3-artifacts';
import { toFieldIssues } from '../domain/run-spec';
import { RunInvalidError } from '../errors';
import type { OutputFile, OutputsManifest } from '../ports/artifacts';
import type { ArtifactReadDeps } from './run-artifacts';
import { getOwnedRun } from './query-runs';

/**
 * `GET /runs/{id}/outputs`: the files the script left in RUNCTL_OUTPUT_DIR, which the agent
 * uploads to `runs/<id>/outputs/` when it exits 0, and the manifest it writes last.
 */

/** A ListObjectsV2 page holds 1,000 keys: one S3 call answers one API page. */
const MAX_OUTPUTS_PAGE = 1000;

const OutputsQuerySchema = z.object({
  limit: z.coerce
    .number()
    .int(`must be a whole number between 1 and ${MAX_OUTPUTS_PAGE}`)
    .min(1, `must be between 1 and ${MAX_OUTPUTS_PAGE}`)
    .max(MAX_OUTPUTS_PAGE, `must be between 1 and ${MAX_OUTPUTS_PAGE}`)
    .default(MAX_OUTPUTS_PAGE),
  nextToken: z.string().regex(/^[A-Za-z0-9_-]{1,1400}$/, 'must be a nextToken from a previous answer').optional(),
});

export interface OutputList {
  runId: string;
  /** Output files in path order, the manifest left out. */
  outputs: OutputFile[];
  /** The manifest the agent wrote after uploading them; absent until the run finished successfully. */
  manifest?: OutputsManifest & { manifestUri: string };
  /** Present while more files remain. */
  nextToken?: string;
}

/** A page of the run's output files; another owner's run is not found. */
export async function listRunOutputs(request: { owner: string; runId: string; query: unknown }, deps: ArtifactReadDeps): Promise<OutputList> {
  const parsed = OutputsQuerySchema.safeParse(request.query ?? {});
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error);
    throw new RunInvalidError(`Invalid query: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  const after = parsed.data.nextToken === undefined ? undefined : Buffer.from(parsed.data.nextToken, 'base64url').toString('utf8');
  const record = await getOwnedRun(request, deps);
  const artifacts = new S3Artifacts(deps.s3, deps.runsBucket);
  const [page, manifest] = await Promise.all([artifacts.listOutputs(record.runId, { limit: parsed.data.limit, after }), artifacts.outputsManifest(record.runId)]);
  return {
    runId: record.runId,
    outputs: page.files,
    ...(manifest === undefined ? {} : { manifest }),
    ...(page.last === undefined ? {} : { nextToken: Buffer.from(page.last, 'utf8').toString('base64url') }),
  };
}
