/**
 * A queue's housekeeping, which every client does its share of: in-flight messages whose
 * lease ran out are requeued (or dead-lettered, or dropped), delayed ones that are due
 * moved into the queue, temporary files of killed writers removed, empty delayed/ and
 * corrupt/ folders removed, and the queue's task records bounded.
 */
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { DdmqError } from '../format/errors.js';
import { isMessageName, parseInFlightName } from '../format/names.js';
import type { Settings } from '../format/settings.js';
import { type Claimer, REQUEUE_CLAIM_SECONDS, statMtime } from './claims.js';
import type { ClaimCursor } from './cursor.js';
import { CORRUPT_DIR, DELAYED_DIR, type OpenFolder, queueMissing } from './folders.js';
import { errnoOf, ioError, listIfExists, TEMP_PREFIX, unlinkIfExists } from './fsx.js';
import type { Clock, RecordSink, Reporter } from './host.js';
import type { QueueDirs } from './queue-dirs.js';
import type { QueueSettings } from './queue-settings.js';
import type { Requeuer } from './requeue.js';
import type { Settler } from './settle.js';

/** Options of `Broker.clean`. */
export interface CleanOptions {
  /**
   * Also remove temporary files that killed writers left (this lists the ready folder).
   * @default true
   */
  temps?: boolean;
  /**
   * Remove only temporary files older than this many seconds.
   * @default 3600
   */
  tempGrace?: number;
}

/** What `Broker.clean` did to one queue. */
export interface CleanResult {
  /** The queue cleaned. */
  queue: string;
  /** Expired messages made ready again. */
  requeued: number;
  /** Expired messages dropped (requeue off or past their limit, and no dead_letter queue). */
  dropped: number;
  /** Expired messages moved to the dead_letter queue. */
  deadLettered: number;
  /** Unreadable message files moved aside to corrupt/. */
  corrupt: number;
  /** Temporary files of killed writers removed. */
  tempsRemoved: number;
  /** Cleaning every queue: set when this one could not be cleaned (the counts are then 0). */
  error?: DdmqError;
}

/**
 * How often the automatic clean (the one consume does) also looks for temporary files of
 * killed writers: they are removed only once an hour old, so a look every 10 minutes is
 * plenty, and it spares the listings of the ready and in-flight folders it takes.
 */
export const AUTO_TEMP_SWEEP_MS = 600_000;

export class Cleaner {
  private lastCleaned = -Infinity;
  /** When the automatic clean last looked for temporary files. */
  private lastTempSweep = -Infinity;
  /** The `cleaned` setting as last read, in ms. */
  private cleanedSetting = 0;

  constructor(
    private readonly name: string,
    private readonly dirs: QueueDirs,
    private readonly cursor: ClaimCursor,
    private readonly claimer: Claimer,
    private readonly requeuer: Requeuer,
    private readonly settler: Settler,
    private readonly settings: QueueSettings,
    private readonly records: RecordSink,
    private readonly clock: Clock,
    private readonly report: Reporter,
    /** Milliseconds between the automatic cleans that consume does. */
    private readonly interval: number,
  ) {}

  /** Whether an automatic clean is due: this process's last one, or the one the `cleaned` setting tells of, is older than the interval. */
  due(settings: Settings): boolean {
    this.cleanedSetting = settings.cleaned * 1000;
    return this.mayBeDue();
  }

  /** due() without reading the settings: by the `cleaned` setting as last read (an idle consumer's cheap poll asks this). */
  mayBeDue(): boolean {
    return this.clock.now() - Math.max(this.lastCleaned, this.cleanedSetting) >= this.interval;
  }

  async cleanIfDue(settings: Settings): Promise<void> {
    if (!this.due(settings)) return;
    const now = this.clock.now();
    const temps = now - this.lastTempSweep >= AUTO_TEMP_SWEEP_MS || now < this.lastTempSweep;
    if (temps) this.lastTempSweep = now;
    try {
      await this.clean({ temps });
    } catch (err) {
      // Housekeeping that fails (a full disk while requeueing) must not stop consuming;
      // the messages stay in work/ and a later clean takes them.
      if (!(err instanceof DdmqError) || err.code === 'QUEUE_MISSING') throw err;
      this.report.warn(new DdmqError(err.code, `clean before consume failed: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
    }
  }

  /**
   * Requeues (or drops, at their limit) the in-flight messages whose lease ran out. Each is
   * first claimed by a rename to a fresh name with a short lease of its own: of two
   * cleaners only the one whose rename wins requeues it. Also moves delayed messages that
   * are due into the queue, and removes temporary files that writers killed mid-write left
   * behind. Works through pinned folders (folders.ts).
   */
  async clean(options: CleanOptions = {}): Promise<CleanResult> {
    // The time first: taking it measures the server's clock if it never was, and the
    // default expiry_grace of the settings read next depends on which clock is in force.
    const now = this.clock.now();
    const settings = await this.settings.get();
    const result: CleanResult = { queue: this.name, requeued: 0, dropped: 0, deadLettered: 0, corrupt: 0, tempsRemoved: 0 };
    const due = Math.floor(now / 1000) - settings.expiry_grace;
    this.lastCleaned = now;
    await this.dirs.folders.withPinned(async (pinned) => {
      if (pinned === null) throw queueMissing(this.name, this.dirs.dir);
      const p = pinned.paths;
      if (pinned.sub.delayed) this.cursor.promoteDue(true, p);
      if (pinned.sub.work) {
        for (const name of listIfExists(p.work) ?? []) {
          const file = isMessageName(name) ? parseInFlightName(name) : null;
          if (file === null || file.expiry >= due) continue;
          // RACE: another cleaner, or the consumer's own nack or extend, renames it first: skipped.
          const claimed = this.claimer.claimInFlight(file, REQUEUE_CLAIM_SECONDS, p);
          if (claimed === null) continue;
          const msg = this.claimer.readClaimed(claimed, p);
          if (msg === null) {
            result.corrupt++;
            continue;
          }
          const { action } = await this.requeuer.requeueOrDrop(msg, claimed, 'expired', settings, p);
          result[action === 'dead-lettered' ? 'deadLettered' : action]++;
          if (settings.history) this.settler.record(msg, name, 'expired', action, {});
        }
      }
      if (options.temps !== false) {
        const dirs = [p.dir, pinned.sub.work?.at, pinned.sub.delayed?.at].filter((d) => d !== undefined);
        result.tempsRemoved = this.removeOldTemps(dirs, (options.tempGrace ?? 3600) * 1000);
      }
      if (pinned.sub.delayed) removeIfEmpty(pinned.sub.delayed, p.dir, DELAYED_DIR);
      if (pinned.sub.corrupt) removeIfEmpty(pinned.sub.corrupt, p.dir, CORRUPT_DIR);
    });
    this.records.prune(this.name, settings);
    if (result.requeued + result.dropped + result.deadLettered + result.corrupt > 0) {
      this.report.log('info', `cleaned ${this.name}: ${result.requeued} requeued, ${result.dropped} dropped, ${result.deadLettered} dead-lettered`);
    }
    return result;
  }

  private removeOldTemps(dirs: string[], graceMs: number): number {
    let removed = 0;
    const now = this.clock.now();
    for (const dir of dirs) {
      for (const name of listIfExists(dir) ?? []) {
        if (!name.startsWith(TEMP_PREFIX)) continue;
        const path = join(dir, name);
        const mtime = statMtime(path);
        if (mtime !== null && now - mtime > graceMs && unlinkIfExists(path)) removed++;
      }
    }
    return removed;
  }
}

/**
 * Removes delayed/ or corrupt/ once nothing is in it: the original tool does not know
 * these folders, and its delete of a queue stops at one it finds there.
 * RACE: a writer that loses the race makes the folder again (writeDelayed, pinSubfolder).
 */
function removeIfEmpty(folder: OpenFolder, dirAt: string, name: string): void {
  if ((listIfExists(folder.at) ?? ['?']).length > 0) return;
  folder.close();
  try {
    fs.rmdirSync(dirAt + sep + name); // never follows a link: one swapped in fails (ENOTDIR)
  } catch (err) {
    const code = errnoOf(err);
    // Not empty any more, gone already, or busy (a network file system's open handle).
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT' && code !== 'EBUSY') throw ioError(err, 'remove folder', dirAt + sep + name);
  }
}
