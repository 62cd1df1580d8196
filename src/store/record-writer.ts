/**
 * Writing task records: one process's buffered appends to its own record files (the
 * layout and the rules are in records.ts).
 */
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { DdmqError, isDdmqError } from '../format/errors.js';
import { encodeRecordLine, recordFileName, type TaskRecord } from '../format/records.js';
import { errnoOf, ioError, unsafePath } from './fsx.js';
import { FLUSH_MS, HIDDEN_DIR, HOST, openRecordsFolder, RECORDS_DIR, ROTATE_BYTES, ROTATE_MS, rootInitialised } from './records.js';

/** A writer appends as soon as this many bytes of one queue's records are held. */
const FLUSH_BYTES = 1024 * 1024;

const APPEND_FLAGS =
  fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

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


/** Writes all of data (a write to a regular file may be short, on a full disk or a network file system). */
function writeAll(fd: number, data: Buffer): void {
  let done = 0;
  while (done < data.length) {
    const n = fs.writeSync(fd, data, done, data.length - done);
    if (n === 0) throw Object.assign(new Error('no progress writing a record file (ENOSPC)'), { code: 'ENOSPC' });
    done += n;
  }
}
