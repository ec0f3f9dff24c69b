/**
 * The code upload that `submit` and `images build` share: pack a directory (ignore files
 * honoured, bytes stable), and store it under its sha256 through POST /uploads unless the API
 * already has it.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { formatBytes, MAX_BUNDLE_BYTES } from '../shared/usecases/uploads';
import type { CommandContext } from './context';
import { CliError } from './errors';
import { packDirectory } from './pack';

export interface UploadedBundle {
  /** S3 URI of the bundle, content-addressed: `…/bundles/<sha256>.tar.gz`. */
  bundle: string;
  sha256: string;
}

/** Packs the directory, then stores it under its sha256 unless it is stored already. */
export async function uploadDirectory(context: CommandContext, dir: string): Promise<UploadedBundle> {
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
      return { bundle: ticket.bundle, sha256: packed.sha256 };
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
    return { bundle: ticket.bundle, sha256: packed.sha256 };
  } finally {
    await rm(dirname(packed.file), { recursive: true, force: true });
  }
}
