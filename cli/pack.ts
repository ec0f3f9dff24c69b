import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type Dirent } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import ignore, { type Ignore } from 'ignore';
import { endOfArchive, entryHeader, padding, type TarEntry } from './tar';

/**
 * Packs a code directory into a .tar.gz. Paths matched by `.gitignore` or `.runctlignore` (at
 * any level, `.runctlignore` read after `.gitignore` so it can re-include with `!`) are left out,
 * as is `.git/`. Entries are sorted and their metadata zeroed: same files, same sha256.
 */

/** The ignore files, in the order their rules apply. */
export const IGNORE_FILES = ['.gitignore', '.runctlignore'] as const;
const ALWAYS_LEFT_OUT = ['.git/'];

interface Matcher {
  /** Directory (relative, '' for the root, else ending in '/') the rules are written for. */
  base: string;
  rules: Ignore;
}

async function matcherFor(dir: string, base: string): Promise<Matcher | undefined> {
  const rules = ignore();
  let any = false;
  for (const name of IGNORE_FILES) {
    try {
      rules.add(await readFile(join(dir, name), 'utf8'));
      any = true;
    } catch {
      // no such file at this level
    }
  }
  return any ? { base, rules } : undefined;
}

/** Whether a path is left out: the deepest ignore file with a verdict on it decides, as in git. */
function isIgnored(relative: string, matchers: readonly Matcher[]): boolean {
  let ignored = false;
  for (const { base, rules } of matchers) {
    const verdict = rules.test(relative.slice(base.length));
    if (verdict.ignored) ignored = true;
    else if (verdict.unignored) ignored = false;
  }
  return ignored;
}

/** Every entry that goes into the bundle, sorted, with paths relative to `root` ('/'-separated). */
export async function listBundleEntries(root: string): Promise<TarEntry[]> {
  const rootRules = ignore().add(ALWAYS_LEFT_OUT);
  const entries: TarEntry[] = [];
  async function walk(dir: string, relative: string, inherited: readonly Matcher[]): Promise<void> {
    const own = await matcherFor(dir, relative);
    const matchers = own === undefined ? inherited : [...inherited, own];
    const children: Dirent[] = await readdir(dir, { withFileTypes: true });
    children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const child of children) {
      const path = `${relative}${child.name}`;
      const full = join(dir, child.name);
      if (child.isDirectory()) {
        // A left-out directory is not entered: as in git, nothing below it can be re-included.
        if (rootRules.ignores(`${path}/`) || isIgnored(`${path}/`, matchers)) continue;
        entries.push({ type: 'directory', path: `${path}/` });
        await walk(full, `${path}/`, matchers);
      } else if (!isIgnored(path, matchers)) {
        if (child.isSymbolicLink()) entries.push({ type: 'symlink', path, target: await readlink(full) });
        else if (child.isFile()) {
          const stats = await lstat(full);
          entries.push({ type: 'file', path, size: stats.size, executable: (stats.mode & 0o111) !== 0 });
        }
        // sockets, FIFOs and devices have no place in a code bundle
      }
    }
  }
  await walk(root, '', [{ base: '', rules: rootRules }]);
  return entries;
}

export interface PackedBundle {
  /** The .tar.gz, in a fresh temporary directory. */
  file: string;
  sha256: string;
  bytes: number;
  files: number;
  /** Bytes of the files before compression. */
  contentBytes: number;
}

/** Packs `root` into a .tar.gz and hashes it on the way out. */
export async function packDirectory(root: string): Promise<PackedBundle> {
  const entries = await listBundleEntries(root);
  const file = join(await mkdtemp(join(tmpdir(), 'runctl-bundle-')), 'bundle.tar.gz');
  const tar = new PassThrough();
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new PassThrough();
  counter.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  // mtime 0 and no file name in the gzip header keep the bytes stable.
  const written = pipeline(tar, createGzip({ level: 9 }), counter, createWriteStream(file));

  for (const entry of entries) {
    tar.write(entryHeader(entry));
    if (entry.type !== 'file') continue;
    let read = 0;
    for await (const chunk of createReadStream(join(root, entry.path))) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      // A file that grew while being packed is cut to the size its header announced.
      const part = buffer.subarray(0, Math.max(0, entry.size - read));
      read += part.length;
      if (!tar.write(part)) await new Promise((resolve) => tar.once('drain', resolve));
    }
    if (read < entry.size) tar.write(Buffer.alloc(entry.size - read)); // shrank meanwhile: keep the archive well-formed
    tar.write(padding(entry.size));
  }
  tar.end(endOfArchive());
  await written;
  const files = entries.filter((e) => e.type === 'file');
  return { file, sha256: hash.digest('hex'), bytes, files: files.length, contentBytes: files.reduce((sum, e) => sum + (e.type === 'file' ? e.size : 0), 0) };
}
