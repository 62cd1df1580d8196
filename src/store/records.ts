/**
 * Where task records live: ROOT/.ddmq/records/QUEUE/HOST-PID-STARTMS.jsonl.
 *
 * - At the root, in a dot-folder: the original tool takes as queues only folders with a
 *   ddmq.yaml and a work/ folder, and ours only names without a dot, so neither sees it;
 *   inside a queue folder it would stop the original's delete (its rmdir fails on it).
 * - One file per writing process (and per hour, or 8 MiB): on NFS or sshfs, appends of
 *   two clients to one file can interleave or overwrite each other; appends of one
 *   process to its own file cannot. Nobody else writes to it, and readers tolerate a
 *   half-written last line (a writer killed mid-write, or one still writing).
 * - Buffered: the per-message calls only push a line to memory; the lines are appended
 *   at most once a second, when the broker closes, and when the process exits. A
 *   process killed with SIGKILL loses at most its last second of records; never a message.
 * - Every folder is opened one level at a time without following a link (folders.ts), and
 *   the file with O_NOFOLLOW: a link in place of any of them is refused, and the record
 *   is dropped with a warning.
 * - Writing a record never fails the ack, nack or release it records: a failure is a
 *   warning (said once until a write succeeds again).
 */
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join, sep } from 'node:path';
import { isQueueName } from '../format/names.js';
import { parseRecordFileName, safeHost } from '../format/records.js';
import { errnoOf, ioError, listIfExists } from './fsx.js';
import { ensureDir } from './fs-write.js';
import { OpenFolder } from './folders.js';

export const HIDDEN_DIR = '.ddmq';
export const RECORDS_DIR = 'records';
/** Records are appended at most this often (ms). */
export const FLUSH_MS = 1000;
/** A writer starts a new file after this long or this many bytes, so old records can be dropped by whole files. */
export const ROTATE_MS = 3600_000;
export const ROTATE_BYTES = 8 * 1024 * 1024;
/** A record file written in the last this many ms is never dropped for size (its writer may be appending). */
export const QUIET_MS = 10 * 60_000;

export const HOST = safeHost(hostname());

/**
 * Opens ROOT/.ddmq/records/QUEUE (or ROOT/.ddmq/records with no queue) one level at a
 * time without following a link, making what is missing with `create`; null if it is
 * missing. A link in place of any level is UNSAFE_PATH.
 */
export function openRecordsFolder(root: string, queue: string | undefined, create: boolean, groupShared = false): OpenFolder | null {
  return openHiddenFolder(root, queue === undefined ? [RECORDS_DIR] : [RECORDS_DIR, queue], create, groupShared);
}

/** Opens ROOT/.ddmq/LEVEL/... as openRecordsFolder does (also for the worker presence files). */
export function openHiddenFolder(root: string, below: string[], create: boolean, groupShared = false): OpenFolder | null {
  const levels = [HIDDEN_DIR, ...below];
  let at = root;
  let path = root;
  let open: OpenFolder | null = null;
  try {
    for (const name of levels) {
      path = join(path, name);
      let next = OpenFolder.open(at, name, path);
      // Made only when missing (a mkdir that fails with EEXIST costs an exception at each
      // flush); mkdir never follows a link, and it is made through the folder above.
      if (next === null && create) {
        ensureDir(at + sep + name, { groupShared });
        next = OpenFolder.open(at, name, path);
      }
      open?.close();
      open = next;
      if (open === null) return null;
      at = open.at;
    }
    return open;
  } catch (err) {
    open?.close();
    throw err;
  }
}

/** The queues that have record folders (real folders with queue names). */
export function recordQueues(root: string): string[] {
  const dir = openRecordsFolder(root, undefined, false);
  if (dir === null) return [];
  try {
    return (listIfExists(dir.at) ?? []).filter(isQueueName).sort();
  } finally {
    dir.close();
  }
}

export interface PruneOptions {
  now: number;
  maxAgeMs: number;
  maxBytes: number;
}

/**
 * Bounds one queue's records: drops the files last written longer than maxAgeMs ago,
 * then the oldest files while the queue's records take more than maxBytes. A file
 * written in the last QUIET_MS, or whose writer is alive on this host, is never dropped
 * (for its age or for size): its writer may still append to it. Whole files are dropped,
 * never rewritten: rewriting a file another process appends to would lose its appends.
 * Returns how many files were removed.
 */
export function pruneRecords(root: string, queue: string, options: PruneOptions): number {
  const dir = openRecordsFolder(root, queue, false);
  if (dir === null) return 0;
  let removed = 0;
  try {
    const files: { name: string; mtime: number; size: number; busy: boolean }[] = [];
    for (const name of listIfExists(dir.at) ?? []) {
      const writer = parseRecordFileName(name);
      if (writer === null) continue;
      const stat = fileStat(dir.at + sep + name);
      if (stat === null || !stat.isFile()) continue; // a link or anything else is not ours to remove
      const busy = options.now - stat.mtimeMs < QUIET_MS || (writer.host === HOST && pidAlive(writer.pid));
      files.push({ name, mtime: stat.mtimeMs, size: stat.size, busy });
    }
    files.sort((a, b) => a.mtime - b.mtime);
    let total = files.reduce((n, f) => n + f.size, 0);
    for (const f of files) {
      const old = options.now - f.mtime > options.maxAgeMs;
      if (f.busy || !(old || total > options.maxBytes)) continue;
      try {
        fs.unlinkSync(dir.at + sep + f.name);
        removed++;
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw ioError(err, 'remove', join(dir.path, f.name));
      }
      total -= f.size;
    }
  } finally {
    dir.close();
  }
  return removed;
}

/**
 * Removes a queue's records folder if it holds nothing (for a queue that no longer exists,
 * once its records have aged out); true if it was removed. The folder is opened one level
 * at a time without following a link (a link in place of any level is UNSAFE_PATH), and
 * removed by rmdir through the records folder: rmdir removes only an empty folder and
 * never follows a link, so a record file made meanwhile keeps it (the writer then finds it
 * there, or makes it again).
 */
export function removeRecordsFolderIfEmpty(root: string, queue: string): boolean {
  const records = openRecordsFolder(root, undefined, false);
  if (records === null) return false;
  try {
    const path = join(records.path, queue);
    const dir = OpenFolder.open(records.at, queue, path);
    if (dir === null) return false;
    try {
      if ((listIfExists(dir.at) ?? ['?']).length > 0) return false;
    } finally {
      dir.close();
    }
    try {
      fs.rmdirSync(records.at + sep + queue);
      return true;
    } catch (err) {
      const code = errnoOf(err);
      // Not empty any more, gone already, or busy (a network file system's open handle).
      if (code === 'ENOENT' || code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EBUSY') return false;
      throw ioError(err, 'remove folder', path);
    }
  } finally {
    records.close();
  }
}

export function fileStat(path: string): fs.Stats | null {
  try {
    return fs.lstatSync(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw ioError(err, 'look up', path);
  }
}

export function rootInitialised(root: string): boolean {
  try {
    return fs.statSync(join(root, 'ddmq.yaml')).isFile();
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM'; // alive, someone else's
  }
}
