/**
 * A clock and timers that a test moves by hand (for the `timers` options, and the
 * broker's `now`): each timer fires exactly when it is due, without waiting.
 */
import type { Timers } from '../src/store/timers.js';

/** Lets the promises that a fired timer started run as far as they can (file-system calls included, which are synchronous here). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

export class FakeTime implements Timers {
  private clock: number;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; callback: () => void }>();
  /** The delay of each timer set, in order. */
  readonly delays: number[] = [];

  /** Starts on a whole second, so that lease expiries (whole seconds) fall at known times. */
  constructor(start = Math.floor(Date.now() / 1000) * 1000) {
    this.clock = start;
  }

  readonly now = (): number => this.clock;

  readonly setTimeout = (callback: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.delays.push(ms);
    this.pending.set(id, { at: this.clock + Math.max(0, ms), callback });
    return id;
  };

  readonly clearTimeout = (handle: unknown): void => {
    this.pending.delete(handle as number);
  };

  /** How many timers are set and have not fired. */
  get timers(): number {
    return this.pending.size;
  }

  /**
   * Moves the clock `ms` on, firing each timer due on the way at its own time, in order,
   * and letting what it started settle before the next.
   */
  async advance(ms: number): Promise<void> {
    const end = this.clock + ms;
    for (;;) {
      await settle();
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.pending) if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      if (next === undefined) break;
      this.pending.delete(next[0]);
      this.clock = Math.max(this.clock, next[1].at);
      next[1].callback();
    }
    this.clock = end;
    await settle();
  }
}
