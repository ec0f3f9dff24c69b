import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { formatBytes, MAX_BUNDLE_BYTES } from '../../shared/usecases/uploads';
import { TERMINAL } from '../api-types';
import { printJson, type CommandContext } from '../context';
import { CliError } from '../errors';
import { packDirectory } from '../pack';
import { checkSpec, clientTokenFor, draftSpec, type SubmitFlags } from '../spec-input';
import { followRun } from './follow';

export interface SubmitOptions extends SubmitFlags {
  follow: boolean;
  /** Start a new run even when this exact spec was submitted before. */
  rerun: boolean;
  clientToken?: string;
}

/** Placeholder bundle for checking the rest of the spec before anything is packed. */
const PLACEHOLDER_BUNDLE = 's3://runctl-placeholder/bundles/pending.tar.gz';

/** `runctl submit`: pack, upload (unless stored), submit idempotently, optionally follow. Returns the exit code. */
export async function submit(context: CommandContext, options: SubmitOptions): Promise<number> {
  const draft = draftSpec(options);
  // Every field but the bundle is checked before the directory is packed.
  const code = { ...(typeof draft.spec.code === 'object' ? draft.spec.code : {}) };
  checkSpec({ ...draft.spec, code: { bundle: PLACEHOLDER_BUNDLE, ...code } });

  let spec = draft.spec;
  if (draft.codeDir !== undefined) {
    const bundle = await uploadDirectory(context, draft.codeDir);
    spec = { ...spec, code: { ...code, bundle } };
  }
  const normalised = checkSpec(spec);
  const clientToken = options.clientToken ?? clientTokenFor(normalised, options.rerun ? new Date().toISOString() : undefined);
  const { status, data: run } = await context.client.submit({ clientToken, spec });

  if (context.json) printJson(context, run);
  else if (status === 201) context.err(`Submitted run ${run.runId} (${run.spec.name}): ${run.status}`);
  else {
    context.err(
      `This exact submission already exists as run ${run.runId} (${run.status}); no second run was started. ` +
        'Pass --rerun to start a new run with the same code and spec.',
    );
  }
  if (!context.json) context.out(run.runId);
  if (!options.follow) {
    if (!context.json) context.err(`Follow it with: runctl status ${run.runId} --follow`);
    return 0;
  }
  if (TERMINAL.has(run.status) && status !== 201) return run.status === 'SUCCEEDED' ? 0 : 1;
  const final = await followRun(context, run.runId);
  return final?.status === 'SUCCEEDED' ? 0 : 1;
}

/** Packs the directory, then stores it under its sha256 unless it is stored already. */
async function uploadDirectory(context: CommandContext, dir: string): Promise<string> {
  const packed = await packDirectory(dir);
  try {
    context.err(`Packed ${dir}: ${packed.files} file${packed.files === 1 ? '' : 's'}, ${formatBytes(packed.contentBytes)} → ${formatBytes(packed.bytes)} compressed (sha256 ${packed.sha256.slice(0, 12)})`);
    if (packed.bytes > MAX_BUNDLE_BYTES) {
      throw new CliError(
        `The code bundle is ${formatBytes(packed.bytes)}, over the ${formatBytes(MAX_BUNDLE_BYTES)} limit. List data, checkpoints, ` +
          `virtual environments and build output in ${dir}/.runctlignore (same syntax as .gitignore), and pass datasets with --data s3://…:/data.`,
      );
    }
    const ticket = await context.client.createUpload({ sha256: packed.sha256, bytes: packed.bytes });
    if (ticket.exists || ticket.uploadUrl === undefined) {
      context.err(`Code bundle unchanged: ${ticket.bundle}`);
      return ticket.bundle;
    }
    const response = await fetch(ticket.uploadUrl, {
      method: 'PUT',
      headers: { ...ticket.uploadHeaders, 'content-length': String(packed.bytes) },
      body: Readable.toWeb(createReadStream(packed.file)),
      duplex: 'half',
    }).catch((error: unknown) => {
      throw new CliError(`Uploading the code bundle failed: ${error instanceof Error ? error.message : String(error)}`, 1, { cause: error });
    });
    if (!response.ok) {
      const detail = (await response.text()).slice(0, 300);
      throw new CliError(`S3 refused the code bundle upload (HTTP ${response.status}): ${detail}`);
    }
    context.err(`Uploaded ${ticket.bundle}`);
    return ticket.bundle;
  } finally {
    await rm(dirname(packed.file), { recursive: true, force: true });
  }
}
