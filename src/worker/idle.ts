/**
 * When a worker (or the message iterator) may end for lack of work.
 *
 * Nothing ready is not enough: a message in flight on another host may still fail (and
 * come back after its retry delay), or its worker may have died (and it comes back once
 * its lease and `expiry_grace` have run out). A worker that left then would strand it.
 * So the idle time only runs while nothing in the queue can still become work:
 * - nothing is ready;
 * - nothing is in flight, on any host (unless `ignoreInFlight`);
 * - no delayed message (a publish with a delay, a failure waiting out its retry backoff)
 *   is due within the idle time.
 *
 * In-flight messages whose lease has run out (past `expiry_grace`) are cleaned at once,
 * not at the next automatic clean (which consume does at most every `cleanIntervalMs`), so
 * that they are taken without that delay.
 */
import { DdmqError, isDdmqError } from '../format/errors.js';
import type { Broker } from '../store/broker.js';
import { brokerInternals } from '../store/internals.js';
import { systemTimers, type Timers } from '../store/timers.js';

/** Longest wait for a message, in seconds, before the idle rule is looked at again. */
const MAX_WAIT = 5;

export interface IdleOptions {
  /** Seconds without anything that can become work before the end; undefined: never. */
  idleExit: number | undefined;
  /** Count only ready and due messages: in-flight ones elsewhere do not keep it waiting. */
  ignoreInFlight: boolean;
}

/**
 * Whether anything in the queue can still become work within `windowMs`; cleans expired
 * leases. `ownInFlight` in-flight messages are the caller's own, and do not count.
 */
export async function workPending(broker: Broker, queue: string, windowMs: number, ignoreInFlight: boolean, ownInFlight = 0): Promise<boolean> {
  const [counts] = await broker.counts(queue);
  if (counts === undefined) return false;
  if (counts.expired > 0) {
    try {
      await broker.clean(queue, { temps: false });
    } catch (err) {
      if (!isDdmqError(err) || err.code === 'QUEUE_MISSING') throw err;
      brokerInternals(broker).report.warn(new DdmqError(err.code, `cleaning expired messages failed: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
    }
    return true;
  }
  if (counts.ready > 0) return true;
  if (!ignoreInFlight && counts.inFlight - ownInFlight > 0) return true;
  return counts.nextDue !== null && counts.nextDue * 1000 <= brokerInternals(broker).clock.now() + windowMs;
}

/**
 * The idle clock of one consumer loop. The idle time is time spent waiting, measured on
 * the timers' clock (a broker's clock set by hand, to a fixed time, must not keep a worker
 * forever); when a delayed message is due is the broker's clock, as the store's is.
 */
export class IdleClock {
  private since: number;
  private readonly timers: Timers;
  /** Work was pending elsewhere at the last look: wait a while before looking again. */
  private pending = false;

  constructor(
    private readonly broker: Broker,
    private readonly queue: string,
    private readonly options: IdleOptions,
    timers: Timers = systemTimers,
  ) {
    this.timers = timers;
    this.since = timers.now();
  }

  /** Seconds the next consume may wait for a message. */
  wait(): number {
    const { idleExit } = this.options;
    if (idleExit === undefined) return MAX_WAIT;
    const left = idleExit - (this.timers.now() - this.since) / 1000;
    return Math.min(MAX_WAIT, Math.max(this.pending ? 1 : 0, left));
  }

  /** There was work (a message taken, a task running): the idle time starts again. */
  busy(): void {
    this.since = this.timers.now();
    this.pending = false;
  }

  /**
   * After a consume that found nothing: true once the idle time has passed with nothing
   * that can become work. `ownInFlight`: in-flight messages the caller holds itself.
   */
  async over(ownInFlight = 0): Promise<boolean> {
    const { idleExit } = this.options;
    if (idleExit === undefined) return false;
    if (await workPending(this.broker, this.queue, idleExit * 1000, this.options.ignoreInFlight, ownInFlight)) {
      this.since = this.timers.now();
      this.pending = true;
      return false;
    }
    this.pending = false;
    return this.timers.now() - this.since >= idleExit * 1000;
  }
}
