/**
 * A minimal, deterministic tar writer (POSIX ustar, PAX records for long names): the same
 * files give the same bytes on every machine, so an unchanged directory has an unchanged hash
 * and is not uploaded again. Owner, group and times are zeroed; modes keep only the exec bits.
 */

const BLOCK = 512;

export type TarEntry =
  | { type: 'file'; path: string; size: number; executable: boolean }
  | { type: 'directory'; path: string }
  | { type: 'symlink'; path: string; target: string };

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function writeString(block: Buffer, offset: number, length: number, text: string): void {
  block.write(text, offset, Math.min(length, Buffer.byteLength(text)), 'utf8');
}

/** Splits a path into ustar prefix (≤155 bytes) and name (≤100 bytes), or undefined when it cannot. */
function splitUstar(path: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let at = path.indexOf('/'); at !== -1; at = path.indexOf('/', at + 1)) {
    const prefix = path.slice(0, at);
    const name = path.slice(at + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { prefix, name };
  }
  return undefined;
}

function header(fields: { name: string; prefix: string; mode: number; size: number; type: string; linkname: string }): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, 0, 100, fields.name);
  writeString(block, 100, 8, octal(fields.mode, 8));
  writeString(block, 108, 8, octal(0, 8));
  writeString(block, 116, 8, octal(0, 8));
  writeString(block, 124, 12, octal(fields.size, 12));
  writeString(block, 136, 12, octal(0, 12));
  block.fill(' ', 148, 156); // the checksum is computed with its own field as spaces
  writeString(block, 156, 1, fields.type);
  writeString(block, 157, 100, fields.linkname);
  writeString(block, 257, 6, 'ustar\0');
  writeString(block, 263, 2, '00');
  writeString(block, 345, 155, fields.prefix);
  let sum = 0;
  for (const byte of block) sum += byte;
  writeString(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (Buffer.byteLength(`${length}${body}`) !== length) length += 1;
  return `${length}${body}`;
}

/** Zero bytes that pad `size` up to a whole block. */
export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The header block(s) of an entry; a file's content and its `padding` follow it. */
export function entryHeader(entry: TarEntry): Buffer {
  const path = entry.type === 'directory' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  const linkname = entry.type === 'symlink' ? entry.target : '';
  const split = splitUstar(path);
  const pax = [
    ...(split === undefined ? [paxRecord('path', path)] : []),
    ...(Buffer.byteLength(linkname) > 100 ? [paxRecord('linkpath', linkname)] : []),
  ].join('');
  const names = split ?? { prefix: '', name: path.slice(-100).replace(/^\/+/, '') };
  const mode = entry.type === 'file' ? (entry.executable ? 0o755 : 0o644) : entry.type === 'directory' ? 0o755 : 0o777;
  const size = entry.type === 'file' ? entry.size : 0;
  const type = entry.type === 'file' ? '0' : entry.type === 'directory' ? '5' : '2';
  const own = header({ ...names, mode, size, type, linkname: linkname.slice(0, 100) });
  if (pax === '') return own;
  const paxBody = Buffer.from(pax, 'utf8');
  const paxHeader = header({ name: 'PaxHeader', prefix: '', mode: 0o644, size: paxBody.length, type: 'x', linkname: '' });
  return Buffer.concat([paxHeader, paxBody, padding(paxBody.length), own]);
}

/** The two zero blocks that end an archive. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(BLOCK * 2);
}
