/**
 * Worker presence files: ROOT/.ddmq/workers/HOST-PID-STARTMS.json, one per running
 * worker, rewritten whole (temporary file, then rename) every PRESENCE_BEAT_MS and
 * removed when the worker ends. `ddmq top` and `broker.workers()` read them to show who
 * works now, also on tasks that run for hours and so leave no record for a long time.
 *
 * - Beside the task records, in the dot-folder neither the original tool nor ours takes
 *   for a queue; every folder opened one level at a time without following a link.
 * - One file per worker and only its worker writes it: no two hosts write one file.
 * - A killed worker leaves its file; readers judge it by its age (PRESENCE_ACTIVE_MS), and
 *   clean removes it once it is an hour old.
 * - Cost on the metadata server: one create and one rename per worker every 15 s, and
 *   within 3 s of a task starting or ending (at most one per 3 s however many tasks).
 * - Never fails the worker: a failed write is a warning (said once until one succeeds).
 */
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { DdmqError, isDdmqError } from '../format/errors.js';
import {
  isPresenceFileName,
  parsePresence,
  PRESENCE_BEAT_MS,
  PRESENCE_MAX_RUNNING,
  presenceFileName,
  type WorkerPresence,
} from '../format/presence.js';
import { errnoOf, ioError, listIfExists, readRegularFile, unlinkIfExists } from './fsx.js';
import { writeFileAtomic } from './fs-write.js';
import { HOST, openHiddenFolder } from './records.js';

export const WORKERS_DIR = 'workers';
/** clean removes a presence file not rewritten for this long (its worker was killed). */
export const PRESENCE_PRUNE_MS = 3600_000;
/** After a change (a task started or ended), the file is rewritten within this many ms, and at most this often. */
export const PRESENCE_CHANGE_MS = 3000;

/** What a worker says of itself at each beat (the rest is filled in here). */
export type PresenceSnapshot = Pick<WorkerPresence, 'queue' | 'concurrency' | 'done' | 'failed' | 'released' | 'lease_lost'> & {
  /** The tasks running now: message id and epoch ms it started. */
  running: {
    /** The message's id. */
    id: string;
    /** Epoch ms its task started. */
    since: number;
  }[];
};

export interface BeaconOptions {
  now: () => number;
  warn: (warning: DdmqError) => void;
  groupShared: boolean;
}

/** One worker's presence file, kept fresh until stop(). */
export class PresenceBeacon {
  private readonly name: string;
  private readonly started: number;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private lastBeat = 0;
  private warned = false;
  private stopped = false;

  constructor(
    private readonly root: string,
    private readonly snapshot: () => PresenceSnapshot,
    private readonly options: BeaconOptions,
  ) {
    this.started = options.now();
    this.name = presenceFileName(HOST, process.pid, this.started);
  }

  /** Writes the file now and every PRESENCE_BEAT_MS until stop(). */
  start(): void {
    this.beat();
    this.timer = setInterval(() => this.beat(), PRESENCE_BEAT_MS);
    this.timer.unref(); // never keeps a process alive
  }

  /**
   * What the worker runs has changed: the file is rewritten within PRESENCE_CHANGE_MS (at
   * most that often), so a viewer sees tasks start and end without a write per task.
   */
  changed(): void {
    if (this.stopped || this.soon !== undefined) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.beat();
    }, Math.max(0, this.lastBeat + PRESENCE_CHANGE_MS - this.options.now()));
    this.soon.unref();
  }

  /** Removes the file: the worker has ended. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soon);
    this.attempt(() => {
      const dir = openHiddenFolder(this.root, [WORKERS_DIR], false);
      if (dir === null) return;
      try {
        unlinkIfExists(dir.at + sep + this.name);
      } finally {
        dir.close();
      }
    });
  }

  private beat(): void {
    if (this.stopped) return;
    const s = this.snapshot();
    this.lastBeat = this.options.now();
    const presence: WorkerPresence = {
      host: HOST,
      pid: process.pid,
      queue: s.queue,
      started: this.started,
      heartbeat: this.options.now(),
      concurrency: s.concurrency,
      running_count: s.running.length,
      running: s.running.slice(0, PRESENCE_MAX_RUNNING),
      done: s.done,
      failed: s.failed,
      released: s.released,
      lease_lost: s.lease_lost,
    };
    this.attempt(() => {
      const dir = openHiddenFolder(this.root, [WORKERS_DIR], true, this.options.groupShared)!;
      try {
        writeFileAtomic(dir.at, this.name, JSON.stringify(presence) + '\n', { fsync: false, groupShared: this.options.groupShared });
      } finally {
        dir.close();
      }
    });
  }

  private attempt(fn: () => void): void {
    try {
      fn();
      this.warned = false;
    } catch (err) {
      if (this.warned) return;
      this.warned = true;
      const why = isDdmqError(err) ? err.message : String(err);
      this.options.warn(
        new DdmqError(isDdmqError(err) ? err.code : 'IO', `worker presence file could not be kept: ${why}`, {
          path: join(this.root, '.ddmq', WORKERS_DIR, this.name),
          cause: err,
        }),
      );
    }
  }
}

/** Every worker presence file of the root that can be read, with its file's age by the reader's clock. */
export function readPresence(root: string): WorkerPresence[] {
  const dir = openHiddenFolder(root, [WORKERS_DIR], false);
  if (dir === null) return [];
  try {
    const out: WorkerPresence[] = [];
    for (const name of (listIfExists(dir.at) ?? []).sort()) {
      if (!isPresenceFileName(name)) continue;
      let content: Buffer | null;
      try {
        content = readRegularFile(dir.at + sep + name);
      } catch (err) {
        if (isDdmqError(err, 'UNSAFE_PATH')) continue; // a link or a FIFO under a worker's name: not a worker
        throw err;
      }
      const p = content === null ? null : parsePresence(content.toString('utf8'));
      if (p !== null) out.push(p);
    }
    return out;
  } finally {
    dir.close();
  }
}

/** Removes the presence files not rewritten for PRESENCE_PRUNE_MS (their workers were killed); how many. */
export function prunePresence(root: string, now: number): number {
  const dir = openHiddenFolder(root, [WORKERS_DIR], false);
  if (dir === null) return 0;
  let removed = 0;
  try {
    for (const name of listIfExists(dir.at) ?? []) {
      if (!isPresenceFileName(name)) continue;
      let stat: fs.Stats;
      try {
        stat = fs.lstatSync(dir.at + sep + name);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') continue;
        throw ioError(err, 'look up', join(dir.path, name));
      }
      if (!stat.isFile() || now - stat.mtimeMs <= PRESENCE_PRUNE_MS) continue;
      if (unlinkIfExists(dir.at + sep + name)) removed++;
    }
  } finally {
    dir.close();
  }
  return removed;
}
