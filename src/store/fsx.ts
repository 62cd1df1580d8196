/**
 * File-system primitives for a tree that may live on a network file system.
 *
 * They are synchronous on purpose: each message costs a handful of small calls, and a
 * synchronous call costs a fraction of a promise round trip through libuv's thread pool.
 *
 * What a network file system changes (see shared/netfs/README.md):
 * - a rename that reports ENOENT may have succeeded (a retransmitted request whose first
 *   reply was lost): a claimer checks its destination before giving up;
 * - ESTALE can come back for a handle the server forgot: the call is tried again;
 * - exclusion comes only from renaming to a name no one else can choose; flock and
 *   O_EXCL are not relied on (sshfs keeps flock local; GlusterFS can fail O_EXCL for both).
 */
import * as fs from 'node:fs';
import { dirname, sep } from 'node:path';
import { DdmqError } from '../format/errors.js';

export const TEMP_PREFIX = '.tmp-';
const STALE_TRIES = 5;

export function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? ((err as NodeJS.ErrnoException).code ?? undefined) : undefined;
}

/** Wraps an OS error as DdmqError IO, naming what was being done and where. */
export function ioError(err: unknown, doing: string, path: string): DdmqError {
  if (err instanceof DdmqError) return err;
  const code = errnoOf(err) ?? 'EUNKNOWN';
  const why = EXPLAIN[code] ?? (err as Error)?.message ?? String(err);
  const where = shownPath(path);
  return new DdmqError('IO', `cannot ${doing} ${where}: ${why} (${code})`, { path: where, osCode: code, cause: err });
}

/**
 * Folders opened without following links are used through a path of the process's
 * open descriptor (/proc/PID/fd/N), which names the folder that was opened whatever
 * happens to its name later. People are shown the folder's own path instead.
 */
const pinnedNames = new Map<string, string>();

export function registerPinned(at: string, path: string): void {
  pinnedNames.set(at, path);
}

export function unregisterPinned(at: string): void {
  pinnedNames.delete(at);
}

/** Whether a path is a pinned folder's name (see registerPinned). */
export function isPinnedName(path: string): boolean {
  return pinnedNames.has(path);
}

/** The path to show for a path that may go through a pinned folder. */
export function shownPath(path: string): string {
  if (!path.startsWith('/proc/')) return path;
  // A subfolder that is not there, of a pinned queue (folders.ts NOWHERE).
  if (path.startsWith('/proc/self/fd/-1/')) return path.slice('/proc/self/fd/-1'.length);
  if (pinnedNames.size === 0) return path;
  const slash = path.indexOf(sep, path.indexOf('/fd/') + 4);
  const at = slash < 0 ? path : path.slice(0, slash);
  const shown = pinnedNames.get(at);
  return shown === undefined ? path : shown + path.slice(at.length);
}

const EXPLAIN: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder',
  EIO: 'input/output error',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  ENOTEMPTY: 'the folder is not empty',
  EBUSY: 'it is busy',
  ELOOP: 'too many symbolic links',
};

/** Runs fn, again when it fails with ESTALE (a network file system forgot a handle). */
export function retryStale<T>(fn: () => T): T {
  for (let attempt = 1; ; attempt++) {
    try {
      return fn();
    } catch (err) {
      if (errnoOf(err) !== 'ESTALE' || attempt >= STALE_TRIES) throw err;
    }
  }
}

export function exists(path: string): boolean {
  return entryKind(path) !== null;
}

export type EntryKind = 'file' | 'dir' | 'link' | 'other';

/**
 * What is at a path, without following a link there; null if nothing. Any error but
 * "not there" is an IO error (ESTALE is tried again): a passing EACCES or ESTALE must
 * not read as "missing", or a caller would go on to create what exists.
 */
export function entryKind(path: string): EntryKind | null {
  const stat = entryStat(path);
  if (stat === null) return null;
  return stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'link' : 'other';
}

/** lstat with the same policy as entryKind: null if nothing is there, IO for any other failure. */
export function entryStat(path: string): fs.Stats | null {
  try {
    return retryStale(() => fs.lstatSync(path));
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw ioError(err, 'look up', path);
  }
}

/**
 * Renames src to dst, a name unique to this claim. Returns false if src was gone (another
 * client took it first). Throws on any other failure, including a missing destination
 * folder, which must not be mistaken for a lost race.
 */
export function claimRename(src: string, dst: string): boolean {
  try {
    retryStale(() => fs.renameSync(src, dst));
    return true;
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw ioError(err, 'rename', src);
    if (exists(dst)) return true; // our rename went through; its reply was lost
    // Not the source: a stale cache (sshfs keeps names ~20 s) can still show it after a lost race.
    if (folderGone(dirname(dst))) throw ioError(err, 'rename into', dirname(dst));
    return false;
  }
}

/**
 * Whether a folder is gone. A pinned folder's /proc name always looks up (it is a link to
 * the open folder), so there the folder itself is asked: one that was removed while open
 * has no links left.
 */
export function folderGone(dir: string): boolean {
  if (!pinnedNames.has(dir)) return entryKind(dir) === null;
  try {
    return fs.statSync(dir).nlink === 0;
  } catch {
    return true;
  }
}

/** The largest file ddmq reads (a message or a settings file). */
export const MAX_READ_BYTES = 512 * 1024 * 1024;
const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/** Reused for every read: message files are small, and most fit in one read into it. */
let readBuffer = Buffer.allocUnsafe(64 * 1024);

/**
 * Reads a regular file; null if it does not exist. A symbolic link is not followed (so a
 * link planted in the tree cannot make ddmq read outside it), and what is not a regular
 * file is refused (UNSAFE_PATH): a folder fails the read with EISDIR; a FIFO, opened
 * without blocking, gives EAGAIN or nothing; an endless device stops at MAX_READ_BYTES.
 * There is no fstat for a file that has content (a short read is the end of a regular
 * file); an empty one is looked at, as a FIFO without a writer reads as empty.
 */
export function readRegularFile(path: string): Buffer | null {
  const fd = openForReading(path);
  if (fd === null) return null;
  try {
    let length = 0;
    for (;;) {
      if (length === readBuffer.length) {
        if (length >= MAX_READ_BYTES) {
          throw new DdmqError('IO', `cannot read ${shownPath(path)}: it is larger than ${MAX_READ_BYTES / 2 ** 20} MiB (EFBIG)`, {
            path: shownPath(path),
            osCode: 'EFBIG',
          });
        }
        const bigger = Buffer.allocUnsafe(Math.min(MAX_READ_BYTES, readBuffer.length * 4));
        readBuffer.copy(bigger, 0, 0, length);
        readBuffer = bigger;
      }
      const wanted = readBuffer.length - length;
      const got = fs.readSync(fd, readBuffer, length, wanted, null);
      length += got;
      if (got < wanted) break;
    }
    if (length === 0 && !fs.fstatSync(fd).isFile()) throw unsafePath(path, 'is not a regular file');
    const content = Buffer.from(readBuffer.subarray(0, length));
    if (readBuffer.length > 1024 * 1024) readBuffer = Buffer.allocUnsafe(64 * 1024); // do not keep a huge one
    return content;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EISDIR') throw unsafePath(path, 'is a folder');
    if (code === 'EAGAIN' || code === 'EINVAL') throw unsafePath(path, 'is not a regular file');
    throw ioError(err, 'read', path);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Opens a file to read it without following a link or blocking (a FIFO); null if it does
 * not exist. `shown`: the path errors name, when `path` goes through a pinned folder.
 */
export function openForReading(path: string, shown = path): number | null {
  try {
    return retryStale(() => fs.openSync(path, READ_FLAGS));
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw unsafePath(shown, 'is a symbolic link');
    throw ioError(err, 'read', shown);
  }
}

export function unsafePath(path: string, what: string): DdmqError {
  const shown = shownPath(path);
  return new DdmqError('UNSAFE_PATH', `refusing to use ${shown}: it ${what}, and ddmq does not follow such entries`, {
    path: shown,
  });
}

/**
 * True if `path` is a real folder, false if it does not exist. A symbolic link or
 * anything else in its place is UNSAFE_PATH: a planted link must not lead outside the tree.
 */
export function isRealDir(path: string): boolean {
  return realDirStat(path) !== null;
}

/** The lstat of a real folder; null if nothing is there; UNSAFE_PATH for a link or anything else. */
export function realDirStat(path: string): fs.Stats | null {
  const stat = entryStat(path);
  if (stat === null) return null;
  if (stat.isSymbolicLink()) throw unsafePath(path, 'is a symbolic link');
  if (!stat.isDirectory()) throw unsafePath(path, 'is not a folder');
  return stat;
}

/** True if `path` is a regular file, false if nothing is there; a link or anything else is UNSAFE_PATH. */
export function isRealFile(path: string): boolean {
  const kind = entryKind(path);
  if (kind === null) return false;
  if (kind === 'link') throw unsafePath(path, 'is a symbolic link');
  if (kind !== 'file') throw unsafePath(path, 'is not a regular file');
  return true;
}

/** Lists a folder; null if it does not exist. */
export function listIfExists(dir: string): string[] | null {
  try {
    return retryStale(() => fs.readdirSync(dir));
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw ioError(err, 'list', dir);
  }
}

/** Deletes a file; false if it did not exist. */
export function unlinkIfExists(path: string): boolean {
  try {
    retryStale(() => fs.unlinkSync(path));
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return false;
    throw ioError(err, 'delete', path);
  }
}

/** Removes a folder, retrying while a network file system's `.nfsXXXX` files keep it busy. */
export async function removeDirRetrying(dir: string, tries = 10): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      retryStale(() => fs.rmdirSync(dir));
      return true;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') return false;
      if ((code !== 'EBUSY' && code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt >= tries) {
        throw ioError(err, 'remove folder', dir);
      }
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

/** True for the files a network file system leaves when an open file is deleted. */
export function isNfsSillyRename(name: string): boolean {
  return name.startsWith('.nfs') || name.startsWith('.fuse_hidden');
}
