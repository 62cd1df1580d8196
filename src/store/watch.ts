/**
 * Waiting for a folder to change, without spinning.
 *
 * Two mechanisms together, because neither is enough alone:
 * - file-change notification (fs.watch, inotify on Linux) wakes a waiter within
 *   milliseconds of a change made on this host;
 * - polling with backoff covers what notification cannot see: changes made by other
 *   hosts on a network file system (NFS, sshfs, GlusterFS deliver no event for them).
 *   The interval starts at `pollMin` and doubles up to `pollMax` while nothing comes, each
 *   one spread at random by ±JITTER (so that consumers started together, hundreds of a job
 *   array, do not poll in step). A message from another host is seen within
 *   (1 + JITTER) × `pollMax`, plus the file system's own cache. What a poll costs is the
 *   caller's: a queue's idle consumer pays one lstat (ClaimCursor.worthListing).
 */
import * as fs from 'node:fs';
import { systemTimers, type Timers } from './timers.js';

/** The file-system calls the watcher makes: node:fs by default, a fake in tests. */
export interface WatchFs {
  /** As fs.watch: calls `listener` on each change in `dir`. */
  watch(
    dir: string,
    options: { persistent: boolean },
    listener: () => void,
  ): {
    /** Stops watching. */
    close(): void;
    /** As fs.FSWatcher's 'error' event. */
    on(event: 'error', listener: (err: Error) => void): unknown;
  };
}

/** node:fs, looked up at each call (so that what replaces fs.watch later is used). */
const nodeWatchFs: WatchFs = {
  watch: (dir, options, listener) => fs.watch(dir, options, listener),
};

/** How far each polling interval is spread at random: ±20 %. */
export const JITTER = 0.2;

/** Options of a {@link FolderWatcher}. */
export interface WatchOptions {
  /**
   * First polling interval, in ms.
   * @default 50
   */
  pollMin?: number;
  /**
   * Longest polling interval, in ms: the latency bound where notification does not reach.
   * @default 1000
   */
  pollMax?: number;
  /**
   * Use file-change notification; false: poll only.
   * @default true
   */
  notify?: boolean;
  /**
   * The clock of the deadlines given to wait(), epoch ms (a queue passes its broker's).
   * @default Date.now
   */
  now?: () => number;
  /**
   * The timers polling waits with.
   * @default the real ones
   */
  timers?: Timers;
  /**
   * The file-system calls it makes.
   * @default node:fs
   */
  fs?: WatchFs;
  /**
   * Random numbers in [0, 1) that spread the polling intervals (tests pass fixed ones).
   * @default Math.random
   */
  random?: () => number;
}

/** Why a wait ended: a change notified, a poll due, the deadline, or the signal. */
export type WakeReason = 'changed' | 'poll' | 'timeout' | 'aborted';

/**
 * Waits for a folder to change: by file-change notification where the file system gives
 * it, and by polling with backoff for what it cannot see (see the top of this file). The
 * waiting consumers of a queue share one.
 */
export class FolderWatcher {
  /** The first polling interval, in ms. */
  readonly pollMin: number;
  /** The longest polling interval, in ms. */
  readonly pollMax: number;
  private interval: number;
  private watcher: ReturnType<WatchFs['watch']> | undefined;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly random: () => number;
  private changed = false;
  private readonly waiters = new Set<(reason: WakeReason) => void>();

  /**
   * @param dir - the folder to watch
   * @param options - polling intervals, notification, timers
   */
  constructor(
    /** The folder watched. */
    readonly dir: string,
    options: WatchOptions = {},
  ) {
    this.pollMin = options.pollMin ?? 50;
    this.pollMax = Math.max(this.pollMin, options.pollMax ?? 1000);
    this.interval = this.pollMin;
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? systemTimers;
    this.random = options.random ?? Math.random;
    if (options.notify === false) return;
    try {
      this.watcher = (options.fs ?? nodeWatchFs).watch(dir, { persistent: false }, () => this.notify());
      // A watcher that fails later (its folder removed) leaves polling to do the work.
      this.watcher.on('error', () => this.closeWatcher());
    } catch {
      this.watcher = undefined; // no notification here: polling alone
    }
  }

  /** Whether change notification is active (it may still miss other hosts' changes). */
  get notifying(): boolean {
    return this.watcher !== undefined;
  }

  /** Something was found: the next wait polls soon again. */
  reset(): void {
    this.interval = this.pollMin;
  }

  /**
   * Resolves on a change in the folder, on the next poll tick (the interval, spread by
   * ±JITTER), when `deadline` (epoch ms)
   * passes, or when the signal aborts, whichever comes first.
   */
  wait(deadline: number, signal?: AbortSignal): Promise<WakeReason> {
    if (signal?.aborted) return Promise.resolve('aborted');
    if (this.changed) {
      this.changed = false;
      return Promise.resolve('changed');
    }
    const left = deadline - this.now();
    if (left <= 0) return Promise.resolve('timeout');
    // Spread evenly over ±JITTER of the interval: the mean stays the interval.
    const poll = Math.round(this.interval * (1 + JITTER * (2 * this.random() - 1)));
    this.interval = Math.min(this.pollMax, this.interval * 2);
    return new Promise((resolve) => {
      const finish = (reason: WakeReason) => {
        this.timers.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(finish);
        resolve(reason);
      };
      const onAbort = () => finish('aborted');
      const timer = this.timers.setTimeout(() => finish(left <= poll ? 'timeout' : 'poll'), Math.min(left, poll));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(finish);
    });
  }

  /** Stops watching; waits under way end at once, with 'aborted'. */
  close(): void {
    this.closeWatcher();
    for (const wake of [...this.waiters]) wake('aborted');
  }

  private notify(): void {
    this.interval = this.pollMin;
    if (this.waiters.size === 0) this.changed = true;
    for (const wake of [...this.waiters]) wake('changed');
  }

  private closeWatcher(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}
