/** POST /volumes and GET /volumes: start a prewarm, list the caller's catalogued volumes. */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { VolumeApiDeps } from '../composition/volumes';
import { toFieldIssues } from '../domain/run-spec';
import { RunInvalidError } from '../errors';
import type { ListOptions, VolumeEntry } from '../ports/catalog';
import type { OwnedInput } from './owned-input';
import { parsePrewarmRequest, requireOwnSnapshot, type PrewarmRequest } from './volume-prewarm';

const ClientTokenSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_", ":" or "-"');

function invalid(what: string, error: z.ZodError): RunInvalidError {
  const issues = toFieldIssues(error);
  return new RunInvalidError(`Invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

/** Execution name of a request: derived from owner and client token (a retried POST starts nothing new), else random. */
export function executionName(prefix: 'prewarm' | 'build', owner: string, clientToken: string | undefined): string {
  const suffix =
    clientToken === undefined
      ? randomBytes(8).toString('hex')
      : createHash('sha256').update(`${prefix}\n${owner}\n${clientToken}`).digest('hex').slice(0, 16);
  return `${prefix}-${suffix}`;
}

/** Splits the optional `clientToken` off a JSON body; the rest is the request. */
export function splitClientToken(body: unknown): { clientToken?: string; rest: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('clientToken' in body)) return { rest: body };
  const { clientToken, ...rest } = body;
  const parsed = ClientTokenSchema.safeParse(clientToken);
  if (!parsed.success) throw invalid('request', new z.ZodError(parsed.error.issues.map((i) => ({ ...i, path: ['clientToken', ...i.path] }))));
  return { clientToken: parsed.data, rest };
}

export interface StartedPrewarm {
  prewarmId: string;
  executionArn: string;
  alreadyStarted: boolean;
  request: PrewarmRequest;
}

/**
 * Validates a prewarm request and starts its prewarm-volume execution, in the caller's name: the
 * volume it records is the caller's entry for the dataset. A `fromSnapshot` must be the snapshot
 * of the caller's own catalogued volume of that dataset (the machine checks again).
 */
export async function startPrewarm(request: { owner: string; body: unknown }, deps: VolumeApiDeps): Promise<StartedPrewarm> {
  const { clientToken, rest } = splitClientToken(request.body);
  const parsed = parsePrewarmRequest(rest);
  if (parsed.fromSnapshot !== undefined) requireOwnSnapshot(parsed, await deps.catalog.getVolume(request.owner, parsed.dataset));
  const prewarmId = executionName('prewarm', request.owner, clientToken);
  const input: OwnedInput = { owner: request.owner, request: parsed };
  const started = await deps.prewarms.start(prewarmId, input);
  return { prewarmId, executionArn: started.executionArn, alreadyStarted: started.alreadyStarted, request: parsed };
}

const ListCatalogQuerySchema = z.object({
  limit: z.coerce.number().int().min(1, 'must be between 1 and 100').max(100, 'must be between 1 and 100').default(50),
  nextToken: z.string().min(1).optional(),
});

/** The query of a catalog listing (GET /volumes, GET /images); RunInvalidError names each bad field. */
export function parseListQuery(query: unknown): ListOptions {
  const parsed = ListCatalogQuerySchema.safeParse(query ?? {});
  if (!parsed.success) throw invalid('query', parsed.error);
  return parsed.data;
}

/** The caller's catalogued volumes, newest first. */
export async function listVolumes(request: { owner: string; query: unknown }, deps: VolumeApiDeps): Promise<{ volumes: VolumeEntry[]; nextToken?: string }> {
  const page = await deps.catalog.listVolumes(request.owner, parseListQuery(request.query));
  return { volumes: page.items, nextToken: page.nextToken };
}
