/**
 * What a root remembers of its work: the task records (records.ts), the presence files of
 * running workers (presence.ts), and the stats made of both; and bounding them.
 */
import { DdmqError, isDdmqError } from '../format/errors.js';
import { checkQueueName } from '../format/names.js';
import { PRESENCE_ACTIVE_MS, type WorkerInfo } from '../format/presence.js';
import type { TaskRecord } from '../format/records.js';
import type { Settings } from '../format/settings.js';
import type { CurrentCounts, Stats } from '../format/stats.js';
import type { Clock, RecordSink, Reporter } from './host.js';
import type { QueueCounts } from './inspect.js';
import { type PresenceSnapshot, PresenceBeacon, prunePresence, readPresence } from './presence.js';
import { readQueueRecords, RecordTail } from './record-reader.js';
import { RecordWriter } from './record-writer.js';
import { HOST, pruneRecords, recordQueues, removeRecordsFolderIfEmpty } from './records.js';
import type { SettingsCache } from './settings-cache.js';

/** Options of `Broker.records`. */
export interface RecordsOptions {
  /**
   * Only the records of tasks that ended at or after this time, in epoch milliseconds.
   * @default every kept record
   */
  since?: number;
}

/** Options of `Broker.stats`. */
export interface StatsOptions {
  /**
   * The start of the recent window (`since` counts, throughput), in epoch milliseconds.
   * @default an hour ago
   */
  since?: number;
}

/** What `Broker.stats` gives: the stats, and the queues that could not be counted. */
export interface StatsResult extends Stats {
  /** One error per queue whose current counts could not be read (a link in its place, a bad ddmq.yaml). */
  problems: DdmqError[];
}

/**
 * A root's history: the task records (written buffered, read, followed, pruned), the
 * presence files of running workers, and the stats made of both. One per broker.
 */
export class History implements RecordSink {
  /** This process's task records of this root, buffered (records.ts). */
  private readonly recorder: RecordWriter;

  constructor(
    private readonly root: string,
    private readonly settings: SettingsCache,
    private readonly clock: Clock,
    private readonly report: Reporter,
  ) {
    this.recorder = new RecordWriter(root, {
      now: () => this.clock.now(),
      warn: (w) => this.report.warn(w),
      groupShared: (queue) => (this.settings.cached(queue) ?? this.settings.rootNow()).group_shared,
    });
  }

  /** Keeps a task record: buffered, written within a second (records.ts). */
  record(r: Omit<TaskRecord, 'host' | 'pid'>): void {
    this.recorder.add({
      queue: r.queue,
      id: r.id,
      host: HOST,
      pid: process.pid,
      start: r.start,
      end: r.end,
      runtime_ms: r.runtime_ms,
      outcome: r.outcome,
      action: r.action,
      exit_code: r.exit_code,
      signal: r.signal,
      attempt: r.attempt,
      error: r.error,
    });
  }

  /** Writes the records held in memory. */
  flush(): void {
    this.recorder.flush();
  }

  /** Bounds a queue's task records (called by clean). A failure is a warning: cleaning goes on. */
  prune(queue: string, settings: Settings): void {
    try {
      const removed = pruneRecords(this.root, queue, {
        now: this.clock.now(),
        maxAgeMs: settings.history_max_age * 1000,
        maxBytes: settings.history_max_bytes,
      });
      if (removed > 0) this.report.log('info', `removed ${removed} old task record files of ${queue}`);
    } catch (err) {
      if (!isDdmqError(err)) throw err;
      this.report.warn(new DdmqError(err.code, `task records of queue ${queue} not pruned: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
    }
  }

  /**
   * Bounds the task records of queues that no longer exist (`gone` tells which names are
   * not queues now), by the root's history_max_age and history_max_bytes, and removes their
   * folders once empty. Failures are warnings: cleaning goes on.
   */
  async pruneDeletedQueues(gone: (name: string) => boolean): Promise<void> {
    try {
      const names = recordQueues(this.root).filter(gone);
      if (names.length === 0) return;
      const settings = await this.settings.settings();
      for (const name of names) {
        this.prune(name, settings);
        try {
          if (removeRecordsFolderIfEmpty(this.root, name)) this.report.log('info', `removed the empty task records folder of deleted queue ${name}`);
        } catch (err) {
          if (!isDdmqError(err)) throw err;
          this.report.warn(new DdmqError(err.code, `task records folder of queue ${name} not removed: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
        }
      }
    } catch (err) {
      if (!isDdmqError(err) || err.code === 'ROOT_MISSING' || err.code === 'ROOT_UNINITIALISED') throw err;
      this.report.warn(new DdmqError(err.code, `task records of deleted queues not pruned: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
    }
  }

  /** Removes the presence files of killed workers (called by clean of the whole root). A failure is a warning. */
  prunePresence(): void {
    try {
      const removed = prunePresence(this.root, this.clock.now());
      if (removed > 0) this.report.log('info', `removed ${removed} presence files of workers gone for over an hour`);
    } catch (err) {
      if (!isDdmqError(err)) throw err;
      this.report.warn(new DdmqError(err.code, `worker presence files not pruned: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
    }
  }

  /** The workers running on this root now, from their presence files (see Broker.workers). */
  workers(): WorkerInfo[] {
    const now = this.clock.now();
    return readPresence(this.root).map((p) => {
      const age = Math.max(0, now - p.heartbeat);
      return { ...p, age_ms: age, active: age <= PRESENCE_ACTIVE_MS };
    });
  }

  /**
   * Starts a worker's presence file (see presence.ts), rewritten every 15 s and soon after
   * `changed()`, until `stop()`; a no-op when the queue keeps no history.
   */
  async announceWorker(
    queue: string,
    snapshot: () => PresenceSnapshot,
  ): Promise<{
    /** The worker's state changed: its file is rewritten soon. */
    changed(): void;
    /** The worker stopped: its file is removed. */
    stop(): void;
  }> {
    const settings = await this.settings.settings(queue);
    if (!settings.history) return { changed() {}, stop() {} };
    const beacon = new PresenceBeacon(this.root, snapshot, { now: () => this.clock.now(), warn: (w) => this.report.warn(w), groupShared: settings.group_shared });
    beacon.start();
    return beacon;
  }

  /** The task records of the named queues, or of every queue that has any (see Broker.records). */
  async *records(queue?: string | string[], options: RecordsOptions = {}): AsyncGenerator<TaskRecord, void, undefined> {
    this.recorder.flush();
    const names = queue === undefined ? recordQueues(this.root) : (typeof queue === 'string' ? [queue] : queue).map(checkQueueName);
    for (const name of names) yield* readQueueRecords(this.root, name, options.since ?? -Infinity);
  }

  /** Follows the task records as they are written (see RecordTail). */
  follow(): RecordTail {
    this.recorder.flush();
    return new RecordTail(this.root, () => this.clock.now());
  }

  /** The stats of the named queues, or of every queue (see Broker.stats); `counts` gives their current counts. */
  async stats(
    queues: string | string[] | undefined,
    options: StatsOptions,
    counts: (queues: string[] | undefined) => Promise<QueueCounts[]>,
  ): Promise<StatsResult> {
    const { summarize } = await import('../format/stats.js'); // only stats needs it
    const now = this.clock.now();
    const wanted = typeof queues === 'string' ? [queues] : queues;
    const current = new Map<string, CurrentCounts>();
    const problems: DdmqError[] = [];
    for (const c of await counts(wanted)) {
      if (c.error === undefined) current.set(c.queue, { ready: c.ready, delayed: c.delayed, in_flight: c.inFlight, expired: c.expired, corrupt: c.corrupt });
      // A deleted queue has only its records left (its current counts are null); a queue that
      // cannot be counted (a link in its place) is in `problems`, and its records are still summed up.
      else if (!isDdmqError(c.error, 'QUEUE_MISSING')) problems.push(c.error);
    }
    const names = wanted ?? [...new Set([...current.keys(), ...recordQueues(this.root)])].sort();
    const all: TaskRecord[] = [];
    for await (const r of this.records(names)) all.push(r);
    return { ...summarize(all, current, { now, since: options.since }), problems };
  }
}
