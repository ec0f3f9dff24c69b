import { createHash } from 'node:crypto';
import { canonicalJson } from '../../shared/domain/run-identity';
import { formatBytes } from '../../shared/usecases/uploads';
import { PrewarmRequestSchema } from '../../shared/usecases/volume-prewarm';
import type { Volume } from '../api-types';
import { printJson, type CommandContext } from '../context';
import { shortTime, table } from '../render';
import { checkRequest, wholeNumber, type FieldIssue } from '../request-issues';

export interface PrewarmOptions {
  dataset?: string;
  az?: string;
  size?: string;
  type?: string;
  iops?: string;
  throughput?: string;
  fromSnapshot?: string;
  clientToken?: string;
}

/** The flag that sets each field of a prewarm request. */
const PREWARM_FLAGS: Record<string, string> = {
  dataset: '--dataset',
  az: '--az',
  sizeGiB: '--size',
  type: '--type',
  iops: '--iops',
  throughput: '--throughput',
  fromSnapshot: '--from-snapshot',
};

/**
 * The prewarm's idempotency token: a hash of the normalised request, so running the same
 * command again (a retry after a timeout) names the same execution instead of a second volume.
 */
export function prewarmTokenFor(request: unknown): string {
  return `volumes-${createHash('sha256').update(canonicalJson(request)).digest('hex').slice(0, 40)}`;
}

/** `runctl volumes prewarm`: validate, then POST /volumes idempotently. Returns the exit code. */
export async function prewarmVolume(context: CommandContext, options: PrewarmOptions): Promise<number> {
  const issues: FieldIssue[] = [];
  const body: Record<string, unknown> = {
    dataset: options.dataset,
    az: options.az,
    sizeGiB: wholeNumber(options.size, 'sizeGiB', issues),
    type: options.type,
    iops: wholeNumber(options.iops, 'iops', issues),
    throughput: wholeNumber(options.throughput, 'throughput', issues),
    fromSnapshot: options.fromSnapshot,
  };
  for (const [key, value] of Object.entries(body)) if (value === undefined) delete body[key];
  const request = checkRequest(PrewarmRequestSchema, body, { what: 'volume request', flags: PREWARM_FLAGS, docs: 'docs/volumes.md', earlier: issues });
  const clientToken = options.clientToken ?? prewarmTokenFor(request);
  const { status, data: started } = await context.client.prewarmVolume({ ...request, clientToken });

  if (context.json) {
    printJson(context, started);
    return 0;
  }
  if (status === 202 && !started.alreadyStarted) {
    context.err(`Started prewarm ${started.prewarmId}: ${request.dataset} onto a ${request.sizeGiB} GiB ${request.type} volume in ${request.az}`);
  } else {
    context.err(
      `This exact prewarm was already started as ${started.prewarmId}; nothing new was started. ` +
        'Pass --client-token TOKEN to start another with the same request.',
    );
  }
  context.out(started.prewarmId);
  context.err(`Execution: ${started.executionArn}`);
  context.err('The volume is listed by `runctl volumes ls` once it is filled, verified and snapshotted.');
  return 0;
}

/** `runctl volumes ls`: the catalog of pre-warmed volumes, newest first (every page). */
export async function listVolumes(context: CommandContext): Promise<number> {
  const volumes: Volume[] = [];
  let nextToken: string | undefined;
  do {
    const page = await context.client.listVolumes({ limit: 100, nextToken });
    volumes.push(...page.volumes);
    nextToken = page.nextToken;
  } while (nextToken !== undefined);

  if (context.json) {
    printJson(context, { volumes });
    return 0;
  }
  if (volumes.length === 0) {
    context.err('No pre-warmed volumes yet. Pre-warm one with: runctl volumes prewarm --dataset s3://bucket/prefix/ --az us-east-1a --size 500');
    return 0;
  }
  const rows = volumes.map((v) => [
    v.datasetUri,
    v.az,
    `${v.sizeGiB} GiB${v.volumeType === undefined ? '' : ` ${v.volumeType}`}`,
    v.volumeId,
    v.snapshotId,
    formatBytes(v.bytes),
    String(v.files),
    shortTime(v.createdAt),
    v.claimedBy ?? '-',
  ]);
  context.out(table(['DATASET', 'AZ', 'SIZE', 'VOLUME', 'SNAPSHOT', 'BYTES', 'FILES', 'CREATED', 'IN USE BY'], rows));
  return 0;
}
