/**
 * Files the user names on the command line: input files read with a size limit (regular files
 * only, so a device or a pipe can neither hang the reader nor fill memory), and output paths
 * checked before any work starts (so a run is never lost to an unwritable path at its end).
 * Each check returns the reason in words, for the caller to put behind the path in its message.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Largest input file read (scenario files, fuzz replays): 4 MiB. Shipped scenarios are a few KiB. */
export const MAX_INPUT_BYTES = 4 * 1024 * 1024;

export type ReadResult = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly why: string };

/** "1.5 MiB", "312 bytes". */
export function bytesText(n: number): string {
  if (n < 1024) return `${n} byte${n === 1 ? '' : 's'}`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u] ?? 'TiB'}`;
}

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Why an fs call failed, in words ("no such file", "permission denied", ...). */
export function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EISDIR':
      return 'is a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a directory';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EROFS':
      return 'read-only file system';
    case 'ENAMETOOLONG':
      return 'file name too long';
    case 'ELOOP':
      return 'too many symbolic links';
    case 'EEXIST':
      return 'already exists';
    case 'EIO':
      return 'input/output error';
    default:
      return code ?? (e instanceof Error ? e.message : String(e));
  }
}

/**
 * Reads a UTF-8 text file of at most `limit` bytes. The file is opened without blocking and
 * checked with fstat before a byte is read: directories, pipes, devices and sockets are refused,
 * and so is a file larger than the limit. A leading byte-order mark is dropped.
 */
export function readTextFile(file: string, limit: number = MAX_INPUT_BYTES): ReadResult {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, why: code === 'EISDIR' ? 'is a directory, not a scenario file' : errnoText(e) };
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) return { ok: false, why: 'is a directory, not a scenario file' };
    if (!st.isFile()) return { ok: false, why: `is ${kindOf(st)}, not a regular file (give a scenario file)` };
    if (st.size > limit) return { ok: false, why: `too large: ${bytesText(st.size)} (the limit is ${bytesText(limit)})` };
    // Read at most limit + 1 bytes: a file that grows while being read still cannot exceed the limit unnoticed.
    const buf = Buffer.alloc(Math.min(st.size, limit) + 1);
    let n = 0;
    for (;;) {
      const got = fs.readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n === buf.length) break;
    }
    if (n > limit) return { ok: false, why: `too large: more than ${bytesText(limit)} (the limit)` };
    const text = buf.toString('utf8', 0, n);
    return { ok: true, text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text };
  } catch (e) {
    return { ok: false, why: errnoText(e) };
  } finally {
    fs.closeSync(fd);
  }
}

/** The nearest existing ancestor of `p` (or `p` itself). */
function nearestExisting(p: string): { dir: string; st: fs.Stats } | { dir: string; why: string } {
  let cur = path.resolve(p);
  for (;;) {
    try {
      return { dir: cur, st: fs.statSync(cur) };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return { dir: cur, why: errnoText(e) };
      const up = path.dirname(cur);
      if (up === cur) return { dir: cur, why: 'no such directory' };
      cur = up;
    }
  }
}

function writableDir(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why a directory cannot hold output files (undefined when it can): it, or the nearest existing
 * part of its path, must be a writable directory. Nothing is created.
 */
export function outputDirProblem(dir: string): string | undefined {
  const near = nearestExisting(dir);
  if ('why' in near) return near.why;
  const { st } = near;
  const self = near.dir === path.resolve(dir);
  if (!st.isDirectory()) return self ? 'is a file, not a directory' : `${near.dir} is a file, not a directory`;
  if (!writableDir(near.dir)) return self ? 'directory not writable (permission denied)' : `cannot create it: ${near.dir} is not writable`;
  return undefined;
}

/**
 * Why a file cannot be written (undefined when it can): an existing file must be writable and not
 * a directory; a new file needs an existing, writable directory. Nothing is created.
 */
export function outputFileProblem(file: string): string | undefined {
  const abs = path.resolve(file);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return errnoText(e);
  }
  if (st !== undefined) {
    if (st.isDirectory()) return 'is a directory';
    try {
      fs.accessSync(abs, fs.constants.W_OK);
    } catch {
      return 'permission denied';
    }
    return undefined;
  }
  const parent = path.dirname(abs);
  const near = nearestExisting(parent);
  if ('why' in near) return near.why;
  if (!near.st.isDirectory()) return `${near.dir} is a file, not a directory`;
  if (near.dir !== parent) return `no such directory: ${parent}`;
  return writableDir(parent) ? undefined : `directory ${parent} is not writable`;
}

/** Creates a directory (and its parents); the reason in words when that fails. */
export function makeDir(dir: string): string | undefined {
  try {
    fs.mkdirSync(dir, { recursive: true });
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EEXIST' || code === 'ENOTDIR' ? (outputDirProblem(dir) ?? errnoText(e)) : errnoText(e);
  }
}
