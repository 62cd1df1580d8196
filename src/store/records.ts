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
import { DdmqError, isDdmqError } from '../format/errors.js';
import { isQueueName } from '../format/names.js';
import { encodeRecordLine, parseRecordFileName, parseRecords, recordFileName, safeHost, type TaskRecord } from '../format/records.js';
import { ensureDir, errnoOf, ioError, listIfExists, openForReading, unsafePath } from './fsx.js';
import { OpenFolder } from './folders.js';

export const HIDDEN_DIR = '.ddmq';
export const RECORDS_DIR = 'records';
/** Records are appended at most this often (ms). */
export const FLUSH_MS = 1000;
/** ... or as soon as this many bytes of one queue's records are held. */
const FLUSH_BYTES = 1024 * 1024;
/** A writer starts a new file after this long or this many bytes, so old records can be dropped by whole files. */
const ROTATE_MS = 3600_000;
const ROTATE_BYTES = 8 * 1024 * 1024;
/** A record file written in the last this many ms is never dropped for size (its writer may be appending). */
export const QUIET_MS = 10 * 60_000;

const APPEND_FLAGS =
  fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

export const HOST = safeHost(hostname());

/** Writers with lines not yet written, flushed when the process exits. */
const pendingWriters = new Set<RecordWriter>();
let exitHook = false;

interface OpenFile {
  name: string;
  startMs: number;
  bytes: number;
}

export interface RecordWriterOptions {
  now: () => number;
  warn: (warning: DdmqError) => void;
  /** Whether the queue's tree is group-shared (files and folders made group-writable). */
  groupShared: (queue: string) => boolean;
}

/** One process's record files of one root: a buffer and a current file per queue. */
export class RecordWriter {
  /** Per queue, the lines not yet written, encoded as they come (no array of strings to join and encode again at the flush). */
  private readonly buffers = new Map<string, { bytes: Buffer; length: number; count: number }>();
  private readonly files = new Map<string, OpenFile>();
  private readonly warned = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly root: string,
    private readonly options: RecordWriterOptions,
  ) {}

  /** Buffers a record; it is written within FLUSH_MS (or at close or exit). */
  add(record: TaskRecord): void {
    let pending = this.buffers.get(record.queue);
    if (pending === undefined) this.buffers.set(record.queue, (pending = { bytes: Buffer.allocUnsafe(64 * 1024), length: 0, count: 0 }));
    const line = encodeRecordLine(record);
    // A UTF-8 character takes at most 3 bytes per UTF-16 unit.
    if (pending.bytes.length - pending.length < line.length * 3) {
      const bigger = Buffer.allocUnsafe(Math.max(pending.bytes.length * 2, pending.length + line.length * 3));
      pending.bytes.copy(bigger, 0, 0, pending.length);
      pending.bytes = bigger;
    }
    pending.length += pending.bytes.write(line, pending.length);
    pending.count++;
    // A busy writer appends every FLUSH_BYTES: a second of records held in memory (megabytes
    // at a fast consumer's rate) costs the garbage collector more than the extra appends.
    if (pending.length >= FLUSH_BYTES) this.flushQueue(record.queue, pending);
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref(); // a pending record must not keep the process alive: exit flushes it
      pendingWriters.add(this);
      if (!exitHook) {
        exitHook = true;
        process.on('exit', () => {
          for (const w of pendingWriters) w.flush();
        });
      }
    }
  }

  /** Appends what is buffered, one write per queue. Never throws: a failure is a warning. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    pendingWriters.delete(this);
    for (const [queue, pending] of this.buffers) {
      this.buffers.delete(queue);
      this.flushQueue(queue, pending);
    }
  }

  private flushQueue(queue: string, pending: { bytes: Buffer; length: number; count: number }): void {
    if (pending.length === 0) return;
    const count = pending.count;
    try {
      this.append(queue, pending.bytes.subarray(0, pending.length));
      this.warned.delete(queue);
    } catch (err) {
      // A root deleted (or its ddmq.yaml removed) meanwhile has nothing to keep records for.
      if (rootInitialised(this.root) && !this.warned.has(queue)) {
        this.warned.add(queue);
        const why = isDdmqError(err) ? err.message : String(err);
        this.options.warn(
          new DdmqError(isDdmqError(err) ? err.code : 'IO', `task records of queue ${queue} could not be written (${count} lost): ${why}`, {
            path: join(this.root, HIDDEN_DIR, RECORDS_DIR, queue),
            cause: err,
          }),
        );
      }
    } finally {
      pending.length = 0;
      pending.count = 0;
    }
  }

  private append(queue: string, data: Buffer): void {
    const now = this.options.now();
    let file = this.files.get(queue);
    if (file === undefined || now - file.startMs >= ROTATE_MS || file.bytes >= ROTATE_BYTES) {
      file = { name: recordFileName(HOST, process.pid, now), startMs: now, bytes: 0 };
      this.files.set(queue, file);
    }
    const groupShared = this.options.groupShared(queue);
    // A cleaner removes the records folder of a queue that no longer exists once it is
    // empty (removeRecordsFolderIfEmpty): removed between our mkdir and our open, it is made again.
    for (let attempt = 1; ; attempt++) {
      const again = attempt < 3;
      const dir = openRecordsFolder(this.root, queue, true, groupShared);
      if (dir === null) {
        if (again) continue;
        throw new DdmqError('IO', `cannot create folder ${join(this.root, HIDDEN_DIR, RECORDS_DIR, queue)}: removed as it was made`);
      }
      try {
        const path = dir.at + sep + file.name;
        let fd: number;
        try {
          fd = fs.openSync(path, APPEND_FLAGS, 0o666);
        } catch (err) {
          const code = errnoOf(err);
          if (code === 'ENOENT' && again) continue;
          if (code === 'ELOOP') throw unsafePath(join(dir.path, file.name), 'is a symbolic link');
          if (code === 'ENXIO' || code === 'EISDIR') throw unsafePath(join(dir.path, file.name), 'is not a regular file');
          throw ioError(err, 'append to', join(dir.path, file.name));
        }
        try {
          const stat = fs.fstatSync(fd);
          if (!stat.isFile()) throw unsafePath(join(dir.path, file.name), 'is not a regular file');
          if (groupShared && (stat.mode & 0o060) !== 0o060) fs.fchmodSync(fd, (stat.mode & 0o7777) | 0o060);
          writeAll(fd, data);
          file.bytes += data.length;
        } catch (err) {
          throw isDdmqError(err) ? err : ioError(err, 'append to', join(dir.path, file.name));
        } finally {
          fs.closeSync(fd);
        }
        return;
      } finally {
        dir.close();
      }
    }
  }
}

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

/** The records of one queue, file by file, skipping what is not a whole record of it. */
export function* readQueueRecords(root: string, queue: string, sinceMs = -Infinity): Generator<TaskRecord> {
  const dir = openRecordsFolder(root, queue, false);
  if (dir === null) return;
  try {
    for (const name of (listIfExists(dir.at) ?? []).sort()) {
      if (parseRecordFileName(name) === null) continue;
      // A file last written before the window holds nothing of it.
      if (sinceMs > -Infinity) {
        const stat = fileStat(dir.at + sep + name);
        if (stat === null || stat.mtimeMs < sinceMs - 1000) continue;
      }
      for (const r of recordsFrom(dir.at + sep + name, join(dir.path, name), 0, queue)) if (r.end >= sinceMs) yield r;
    }
  } finally {
    dir.close();
  }
}

/** Bytes of a record file read at a time: memory stays bounded however large a file is. */
const READ_CHUNK = 16 * 1024 * 1024;

/**
 * The records of `queue` in a record file, from `offset` on, read chunk by chunk; returns
 * the offset just past the last whole line (what follows is a line still being written),
 * or null if the file is gone. A record naming another queue is not one of this folder's
 * and is skipped, as is a line longer than a chunk (no record is). A link, a folder or a
 * FIFO in the file's place is refused (UNSAFE_PATH), named by `shown`.
 */
/** Where a read of a record file stopped (the offset of the first byte not read) and the file's modification time then. */
export interface ReadEnd {
  offset: number;
  mtimeMs: number;
}

/** The records of one file from a byte offset on; returns where it stopped, or null if the file is gone. */
export function* recordsFrom(path: string, shown: string, offset: number, queue: string): Generator<TaskRecord, ReadEnd | null> {
  const fd = openForReading(path, shown);
  if (fd === null) return null;
  try {
    let stat: fs.Stats;
    try {
      stat = fs.fstatSync(fd);
    } catch (err) {
      throw ioError(err, 'read', shown);
    }
    if (stat.isDirectory()) throw unsafePath(shown, 'is a folder');
    if (!stat.isFile()) throw unsafePath(shown, 'is not a regular file');
    const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(1, stat.size - offset)));
    let pos = offset;
    let skipping = false; // inside a line longer than a chunk
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, buffer, 0, buffer.length, pos);
      } catch (err) {
        throw ioError(err, 'read', shown);
      }
      const last = buffer.subarray(0, n).lastIndexOf(0x0a);
      if (last === -1) {
        // The end, within a line still being written (read again next time).
        if (n < READ_CHUNK) break;
        // A whole chunk without a newline: a line no record is, skipped.
        skipping = true;
        pos += n;
        continue;
      }
      const from = skipping ? buffer.indexOf(0x0a) + 1 : 0;
      skipping = false;
      for (const r of parseRecords(buffer.toString('utf8', from, last + 1))) if (r.queue === queue) yield r;
      pos += last + 1;
      if (n < buffer.length) break;
    }
    return { offset: pos, mtimeMs: stat.mtimeMs };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Follows the record files of some queues, as `tail -f` would: each poll() returns the
 * records appended since the last one (the first returns every kept record). A file is
 * read from where the last poll stopped, and once its writer has surely moved on to a
 * newer file it is never looked at again, so a poll costs a listing per queue and a look
 * at each file still being written, however long the history. For `ddmq top`, polling
 * once a second.
 *
 * A writer appends to a file for at most ROTATE_MS after it made it, timed by its own
 * clock, so a file not modified for longer than that (plus a margin for the reader's
 * skew against the file system's clock) is settled. The time in the file's name is not
 * used for this: a writer whose clock runs an hour behind would drop out of sight.
 */
export class RecordTail {
  private readonly files = new Map<string, { offset: number; done: boolean }>();

  constructor(
    private readonly root: string,
    private readonly now: () => number,
  ) {}

  poll(queues: readonly string[]): TaskRecord[] {
    const out: TaskRecord[] = [];
    const settledBefore = this.now() - ROTATE_MS - 5 * 60_000;
    for (const queue of queues) {
      const dir = openRecordsFolder(this.root, queue, false);
      if (dir === null) continue;
      try {
        for (const name of listIfExists(dir.at) ?? []) {
          if (parseRecordFileName(name) === null) continue;
          const key = `${queue}/${name}`;
          let file = this.files.get(key);
          if (file === undefined) this.files.set(key, (file = { offset: 0, done: false }));
          if (file.done) continue;
          const records = recordsFrom(dir.at + sep + name, join(dir.path, name), file.offset, queue);
          let end: ReadEnd | null;
          try {
            for (let r = records.next(); ; r = records.next()) {
              if (r.done === true) {
                end = r.value;
                break;
              }
              out.push(r.value);
            }
          } catch (err) {
            if (!isDdmqError(err, 'UNSAFE_PATH')) throw err;
            end = null; // a link or a FIFO under a record file's name holds no records
          }
          if (end === null) {
            file.done = true; // dropped by a cleaner
            continue;
          }
          file.offset = end.offset;
          if (end.mtimeMs < settledBefore) file.done = true;
        }
      } finally {
        dir.close();
      }
    }
    return out;
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

function fileStat(path: string): fs.Stats | null {
  try {
    return fs.lstatSync(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw ioError(err, 'look up', path);
  }
}

function rootInitialised(root: string): boolean {
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

/** Writes all of data (a write to a regular file may be short, on a full disk or a network file system). */
function writeAll(fd: number, data: Buffer): void {
  let done = 0;
  while (done < data.length) {
    const n = fs.writeSync(fd, data, done, data.length - done);
    if (n === 0) throw Object.assign(new Error('no progress writing a record file (ENOSPC)'), { code: 'ENOSPC' });
    done += n;
  }
}
