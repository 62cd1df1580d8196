/**
 * Keeping the leases of messages alive while their tasks run: one renewer, one timer for
 * all the leases it holds (set for the earliest renewal due).
 *
 * - A lease is renewed every third of its length (a 1 s lease every ~333 ms).
 * - A renewal that fails is tried again soon (100 ms, doubling, at most a third of the
 *   lease), until the lease has run out: transient errors of network file systems
 *   (ESTALE, EIO, EAGAIN, ...) usually pass within that time. The first failure of a run
 *   is reported as a warning.
 * - The lease is lost, and reported exactly once, when the store says the message is no
 *   longer ours (NOT_IN_FLIGHT: a cleaner or another consumer took it; or its queue is
 *   gone), or when it could not be renewed before it ran out. Then nothing more is tried.
 */
import { DdmqError, isDdmqError } from '../format/errors.js';
import type { Message } from '../format/message.js';
import { parseInFlightName } from '../format/names.js';
import { MAX_SECONDS } from '../format/settings.js';
import type { Broker } from '../store/broker.js';
import { brokerInternals } from '../store/internals.js';
import { systemTimers, type Timers } from '../store/timers.js';

/** First delay before a failed renewal is tried again, in ms; it doubles with each failure. */
const RETRY_FIRST_MS = 100;

/** What a renewer needs of the broker: renewing, its clock (when a lease runs out), and where warnings go. */
interface LeaseStore {
  extend(msg: Message, seconds: number): Promise<string>;
  now(): number;
  warn(warning: DdmqError): void;
}

/** What a held lease tells its holder (see {@link LeaseRenewer.hold}). */
export interface LeaseHooks {
  /** The lease is lost: called once, with the error that showed it. */
  onLost?(error: DdmqError): void;
  /**
   * A renewal failed and will be tried again, for the first failure of each run.
   * @default the broker's onWarning
   */
  onWarning?(error: DdmqError): void;
}

/** A lease a {@link LeaseRenewer} keeps alive, until released or lost. */
export interface HeldLease {
  /** Whether the lease was lost. */
  readonly lost: boolean;
  /** Aborted when the lease is lost, with the error that showed it as its reason: pass it to the task. */
  readonly signal: AbortSignal;
  /**
   * Stops renewing; resolves once a renewal under way has finished (a loss it finds is
   * still reported). Rejects with what a hook threw, if one did.
   */
  release(): Promise<void>;
}

interface Held {
  readonly msg: Message;
  readonly seconds: number;
  readonly hooks: LeaseHooks;
  readonly controller: AbortController;
  /** When the next renewal is due, on the timers' clock; Infinity while one is under way. */
  dueAt: number;
  /** When the lease runs out, in epoch ms on the broker's clock. */
  deadline: number;
  failures: number;
  renewing: Promise<void> | undefined;
  released: boolean;
  hookError: { error: unknown } | undefined;
}

/** Timers may fire up to a millisecond before the clock says they are due. */
const EARLY_MS = 1;

/** Options of a {@link LeaseRenewer}. */
export interface LeaseRenewerOptions {
  /**
   * The timers renewals are made with (tests pass timers they move by hand).
   * @default the real ones
   */
  timers?: Timers;
}

/**
 * Keeps the leases of consumed messages alive while their tasks run: one timer for all
 * the leases it holds, each renewed every third of its length. `work()` uses one; a
 * program with its own loop (over `consume` or `messages()`) makes its own.
 *
 * @example
 * ```ts
 * const renewer = new LeaseRenewer(broker);
 * for await (const msg of messages(broker, 'tasks', { lease: 60 })) {
 *   const lease = renewer.hold(msg, 60, { onLost: (err) => console.error(err.message) });
 *   try {
 *     await convert(msg.message, { signal: lease.signal });
 *   } finally {
 *     await lease.release();
 *   }
 *   if (!lease.lost) await broker.ack(msg);
 * }
 * await renewer.close();
 * ```
 */
export class LeaseRenewer {
  private readonly held = new Set<Held>();
  private readonly timers: Timers;
  private timer: unknown;
  private timerAt = Infinity;
  private closed = false;

  private readonly broker: LeaseStore;

  /**
   * @param broker - the Broker whose messages it renews. The broker's clock (its `now`
   *   option) decides when a lease has run out; `timers` when renewals are made.
   * @param options - the timers
   */
  constructor(broker: Broker, options: LeaseRenewerOptions = {}) {
    const internals = brokerInternals(broker);
    this.broker = {
      extend: (msg, seconds) => broker.extend(msg, seconds),
      now: () => internals.clock.now(),
      warn: (warning) => internals.report.warn(warning),
    };
    this.timers = options.timers ?? systemTimers;
  }

  /** How many leases it holds. */
  get size(): number {
    return this.held.size;
  }

  /**
   * Keeps `msg`'s lease alive, renewing it to `seconds` every third of that, until it is
   * released or lost. `msg` must be in flight (consumed) and not held already.
   * @param msg - a consumed message
   * @param seconds - its lease, in whole seconds (1 to ten years)
   * @param hooks - told when the lease is lost, and of a failed renewal
   * @returns the held lease: whether it was lost, a signal aborted when it is, and release()
   * @throws {@link DdmqError} `INVALID_ARGUMENT` (the renewer is closed, seconds out of
   *   range, the message not in flight or held already)
   */
  hold(msg: Message, seconds: number, hooks: LeaseHooks = {}): HeldLease {
    if (this.closed) throw new DdmqError('INVALID_ARGUMENT', 'the lease renewer is closed');
    if (!(Number.isSafeInteger(seconds) && seconds >= 1 && seconds <= MAX_SECONDS)) {
      throw new DdmqError('INVALID_ARGUMENT', `invalid lease ${JSON.stringify(seconds)}: expected a whole number of seconds, from 1 to ${MAX_SECONDS}`);
    }
    const file = parseInFlightName(msg.filename);
    if (file === null) throw new DdmqError('INVALID_ARGUMENT', `${msg.queue}/${msg.id} is not in flight: only a consumed message has a lease`);
    for (const h of this.held) {
      if (h.msg === msg) throw new DdmqError('INVALID_ARGUMENT', `the lease of ${msg.queue}/${msg.id} is held already`);
    }
    const h: Held = {
      msg,
      seconds,
      hooks,
      controller: new AbortController(),
      dueAt: this.timers.now() + this.period(seconds),
      deadline: (file.expiry + 1) * 1000,
      failures: 0,
      renewing: undefined,
      released: false,
      hookError: undefined,
    };
    this.held.add(h);
    this.schedule();
    return {
      get lost() {
        return h.controller.signal.aborted;
      },
      signal: h.controller.signal,
      release: () => this.release(h),
    };
  }

  /** Releases every lease it holds (waiting for renewals under way); it holds no more after. */
  async close(): Promise<void> {
    this.closed = true;
    const results = await Promise.allSettled([...this.held].map((h) => this.release(h)));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  private period(seconds: number): number {
    return (seconds * 1000) / 3;
  }

  private async release(h: Held): Promise<void> {
    h.released = true;
    this.held.delete(h);
    this.schedule();
    await h.renewing;
    if (h.hookError !== undefined) throw h.hookError.error;
  }

  /** Sets the one timer for the earliest renewal due, unless it is set for that already. */
  private schedule(): void {
    let earliest = Infinity;
    for (const h of this.held) earliest = Math.min(earliest, h.dueAt);
    if (earliest === this.timerAt) return;
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = earliest;
    if (earliest === Infinity) return;
    this.timer = this.timers.setTimeout(() => this.due(), Math.max(0, earliest - this.timers.now()));
  }

  private due(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.timers.now();
    for (const h of this.held) {
      if (h.dueAt > now + EARLY_MS) continue;
      h.dueAt = Infinity;
      h.renewing = this.renew(h).finally(() => {
        h.renewing = undefined;
        this.schedule();
      });
    }
    this.schedule();
  }

  private async renew(h: Held): Promise<void> {
    const { msg } = h;
    try {
      await this.broker.extend(msg, h.seconds);
      h.failures = 0;
      const file = parseInFlightName(msg.filename);
      h.deadline = file === null ? this.broker.now() + h.seconds * 1000 : (file.expiry + 1) * 1000;
      this.next(h, this.period(h.seconds));
    } catch (err) {
      if (h.controller.signal.aborted) return;
      if (isDdmqError(err, 'NOT_IN_FLIGHT') || isDdmqError(err, 'QUEUE_MISSING')) {
        this.lose(h, err);
        return;
      }
      const reason = err instanceof Error ? err.message : String(err);
      const osCode = isDdmqError(err) ? err.osCode : undefined;
      const left = h.deadline - this.broker.now();
      if (left <= 0) {
        this.lose(h, new DdmqError('NOT_IN_FLIGHT', `the lease of ${msg.queue}/${msg.id} ran out: it could not be renewed (${reason})`, { cause: err, osCode }));
        return;
      }
      h.failures++;
      if (h.failures === 1) {
        const warning = new DdmqError(
          isDdmqError(err) ? err.code : 'IO',
          `renewing the lease of ${msg.queue}/${msg.id} failed (${reason}); trying again until it runs out in ${Math.ceil(left / 1000)} s`,
          { cause: err, osCode },
        );
        this.call(h, () => (h.hooks.onWarning ? h.hooks.onWarning(warning) : this.broker.warn(warning)));
      }
      // One last try at the deadline itself, if the backoff would pass it.
      this.next(h, Math.min(RETRY_FIRST_MS * 2 ** Math.min(h.failures - 1, 20), this.period(h.seconds), left));
    }
  }

  /** The next renewal of `h`, `ms` from now, unless it was released meanwhile. */
  private next(h: Held, ms: number): void {
    if (!h.released) h.dueAt = this.timers.now() + ms;
  }

  private lose(h: Held, error: DdmqError): void {
    this.held.delete(h);
    h.controller.abort(error);
    this.call(h, () => h.hooks.onLost?.(error));
  }

  /** Runs a hook; what it throws is kept for release() to reject with, never dropped. */
  private call(h: Held, hook: () => void): void {
    try {
      hook();
    } catch (error) {
      h.hookError ??= { error };
    }
  }
}
