/**
 * Writing to the tree: folders made one level at a time, files written whole under a
 * temporary name and renamed (or linked) into place, group access for shared trees, and
 * folder syncs. The same network-file-system rules as fsx.ts hold here.
 */
import * as fs from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { newClaimToken } from '../format/names.js';
import { entryKind, errnoOf, exists, ioError, isPinnedName, isRealDir, retryStale, TEMP_PREFIX, unsafePath } from './fsx.js';

/**
 * Makes a folder and its missing parents, one level at a time, a bounded number of
 * times. (Node 20's recursive mkdirSync loops forever on some paths, such as under /proc.)
 */
export function makeDirs(path: string): void {
  const missing: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    if (entryKind(dir) !== null) break;
    missing.push(dir);
    if (dirname(dir) === dir || missing.length > 256) break;
  }
  for (const dir of missing.reverse()) ensureDir(dir);
}

/**
 * Creates a file only if nothing has its name, whole or not at all: the data goes to a
 * temporary file that is then hard-linked to the name (a link never replaces what is
 * there), and the temporary name is removed. Returns false if the name was taken.
 * Where hard links are not supported, the name is checked, then the file renamed there.
 */
export function createFileIfMissing(dir: string, name: string, data: string, options: WriteOptions): boolean {
  const tmp = `${dir}${sep}${TEMP_PREFIX}${process.pid}-${newClaimToken()}`;
  const final = dir + sep + name;
  try {
    writeTemp(tmp, data, options);
    try {
      retryStale(() => fs.linkSync(tmp, final));
    } catch (err) {
      // sshfs reports a lost race as EPERM; GlusterFS can fail for both racers: look.
      if (exists(final)) return false;
      const code = errnoOf(err);
      if (code !== 'EPERM' && code !== 'ENOSYS' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err;
      retryStale(() => fs.renameSync(tmp, final));
      if (options.fsync) fsyncDir(dir);
      return true;
    }
  } catch (err) {
    throw ioError(err, 'create', final);
  } finally {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // renamed, or never made
    }
  }
  if (options.fsync) fsyncDir(dir);
  return true;
}

function writeTemp(tmp: string, data: string | Uint8Array, options: WriteOptions): void {
  const fd = retryStale(() => fs.openSync(tmp, 'wx'));
  try {
    if (options.groupShared) addGroupAccess(tmp, 0o060, fd);
    fs.writeFileSync(fd, data);
    if (options.fsync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Makes a folder unless it is there. On GlusterFS two racing mkdirs can both report
 * EEXIST while the folder ends up missing, so EEXIST is confirmed with a look-up; a
 * symbolic link in its place is UNSAFE_PATH.
 */
export function ensureDir(path: string, options: { groupShared?: boolean } = {}): void {
  // A pinned folder is open, and was a real folder when it was opened (its /proc name is a
  // link, which the look-up below would refuse). If it was removed since, the write into it
  // fails, and the caller pins again.
  if (isPinnedName(path)) return;
  for (let attempt = 1; ; attempt++) {
    try {
      retryStale(() => fs.mkdirSync(path));
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw ioError(err, 'create folder', path);
      if (!isRealDir(path)) {
        if (attempt >= 5) throw ioError(err, 'create folder', path);
        continue;
      }
    }
    if (options.groupShared) addFolderGroupAccess(path);
    return;
  }
}

/**
 * Gives the group access to a folder (rwx and setgid) through a descriptor opened without
 * following a link: a folder swapped for a link after the mkdir fails here (UNSAFE_PATH)
 * instead of opening the link's target to the group.
 */
function addFolderGroupAccess(path: string): void {
  let fd: number;
  try {
    fd = retryStale(() => fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW));
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ELOOP' || code === 'ENOTDIR') throw unsafePath(path, entryKind(path) === 'link' ? 'is a symbolic link' : 'is not a folder');
    throw ioError(err, 'set group access on', path);
  }
  try {
    addGroupAccess(path, 0o2070, fd, true);
  } finally {
    fs.closeSync(fd);
  }
}

/** Adds permission bits (group rw, and setgid on folders) to what the umask let through. */
export function addGroupAccess(path: string, bits: number, fd: number, isFolder = false): void {
  try {
    const mode = fs.fstatSync(fd).mode & 0o7777;
    if ((mode & bits) === bits) return;
    fs.fchmodSync(fd, mode | bits);
  } catch (err) {
    // Someone else's folder: its maker set its access, and it is not ours to change.
    if (errnoOf(err) === 'EPERM' && isFolder) return;
    throw ioError(err, 'set group access on', path);
  }
}

export interface WriteOptions {
  /** fsync the file before the rename and the folder after it. */
  fsync: boolean;
  /** Give the group read and write access (the `group_shared` setting). */
  groupShared?: boolean;
}

/**
 * Writes a file whole or not at all: the data goes to a temporary file in the same
 * folder, which is then renamed to its final name. Readers see all of it or nothing.
 */
export function writeFileAtomic(dir: string, name: string, data: string | Uint8Array, options: WriteOptions): void {
  const tmp = `${dir}${sep}${TEMP_PREFIX}${process.pid}-${newClaimToken()}`;
  const final = dir + sep + name;
  try {
    if (!options.fsync && !options.groupShared && typeof data === 'string') {
      // One native call opens, writes and closes.
      retryStale(() => fs.writeFileSync(tmp, data, { flag: 'wx' }));
    } else {
      writeTemp(tmp, data, options);
    }
    retryStale(() => fs.renameSync(tmp, final));
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // it may never have been made, or be gone already; the error that matters is the first
    }
    throw ioError(err, 'write', final);
  }
  if (options.fsync) fsyncDir(dir);
}

/** Errors of a folder's fsync that mean the file system does not sync folders (a no-op there, not a failure). */
export function folderCannotBeSynced(code: string | undefined): boolean {
  return code === 'EINVAL' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EISDIR';
}

/** fsyncs a folder so that a rename into it survives a crash; a no-op where unsupported. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    const code = errnoOf(err);
    if (!folderCannotBeSynced(code)) {
      throw ioError(err, 'sync folder', dir);
    }
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
