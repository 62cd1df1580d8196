/**
 * Reading task records: a queue's record files, one file from an offset, and a tail that
 * follows them (the layout and the rules are in records.ts).
 */
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { parseRecordFileName, parseRecords, type TaskRecord } from '../format/records.js';
import { isDdmqError } from '../format/errors.js';
import { ioError, listIfExists, openForReading, unsafePath } from './fsx.js';
import { fileStat, openRecordsFolder, ROTATE_MS } from './records.js';

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

  /**
   * The records of these queues written since the last poll (the first poll: every kept one).
   * @param queues - the queues to follow; a queue not named before starts from its first record
   * @returns the new records, in file order
   * @throws {@link DdmqError} `IO`
   */
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
