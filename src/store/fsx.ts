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
import { dirname, join } from 'node:path';
import { DdmqError } from '../format/errors.js';
import { newClaimToken } from '../format/names.js';

/** Prefix of our temporary files. It never contains ".ddmq", so no reader takes one for a message. */
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
  return new DdmqError('IO', `cannot ${doing} ${path}: ${why} (${code})`, { path, osCode: code, cause: err });
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
  try {
    retryStale(() => fs.lstatSync(path));
    return true;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
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
    if (!exists(dirname(dst))) throw ioError(err, 'rename into', dirname(dst));
    return false;
  }
}

/** Reads a file as UTF-8; null if it does not exist. */
export function readTextIfExists(path: string): string | null {
  try {
    return retryStale(() => fs.readFileSync(path, 'utf8'));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw ioError(err, 'read', path);
  }
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

/**
 * Makes a folder unless it is there. On GlusterFS two racing mkdirs can both report
 * EEXIST while the folder ends up missing, so EEXIST is confirmed with a look-up.
 */
export function ensureDir(path: string): void {
  for (let attempt = 1; ; attempt++) {
    try {
      retryStale(() => fs.mkdirSync(path));
      return;
    } catch (err) {
      const code = errnoOf(err);
      if (code !== 'EEXIST') throw ioError(err, 'create folder', path);
      let stat: fs.Stats;
      try {
        stat = fs.statSync(path);
      } catch (statErr) {
        if (errnoOf(statErr) === 'ENOENT' && attempt < 5) continue;
        throw ioError(statErr, 'create folder', path);
      }
      if (!stat.isDirectory()) {
        throw new DdmqError('IO', `cannot create folder ${path}: a file of that name is in the way`, {
          path,
          osCode: 'EEXIST',
        });
      }
      return;
    }
  }
}

export interface WriteOptions {
  /** fsync the file before the rename and the folder after it. */
  fsync: boolean;
}

/**
 * Writes a file whole or not at all: the data goes to a temporary file in the same
 * folder, which is then renamed to its final name. Readers see all of it or nothing.
 */
export function writeFileAtomic(dir: string, name: string, data: string | Uint8Array, options: WriteOptions): void {
  const tmp = join(dir, `${TEMP_PREFIX}${process.pid}-${newClaimToken()}`);
  const final = join(dir, name);
  let fd: number;
  try {
    fd = retryStale(() => fs.openSync(tmp, 'wx'));
  } catch (err) {
    throw ioError(err, 'create a file in', dir);
  }
  try {
    try {
      fs.writeFileSync(fd, data);
      if (options.fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    retryStale(() => fs.renameSync(tmp, final));
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // it may be gone already; the error that matters is the first one
    }
    throw ioError(err, 'write', final);
  }
  if (options.fsync) fsyncDir(dir);
}

/** fsyncs a folder so that a rename into it survives a crash; a no-op where unsupported. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    const code = errnoOf(err);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EISDIR') {
      throw ioError(err, 'sync folder', dir);
    }
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
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
