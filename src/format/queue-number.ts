/**
 * Queue numbers: the publish time that orders messages of equal priority.
 *
 * We write a fixed 20 digits: 16 digits of epoch microseconds, then a 4-digit sequence.
 * Within one process they never decrease, even if the wall clock steps back: the last
 * time is kept and the sequence counts up under it (and carries into the microseconds
 * when it runs out), so that a process's messages keep the order it published them in.
 */
export type MicrosClock = () => number;

/**
 * Wall-clock epoch microseconds: Date's milliseconds with the monotonic clock's sub-ms part.
 * process.hrtime, not performance.now: the latter loads perf_hooks, ~2 ms of a short command.
 */
export const wallClockMicros: MicrosClock = () => Date.now() * 1000 + Number((process.hrtime.bigint() / 1000n) % 1000n);

export class QueueNumbers {
  private lastMicros = 0;
  private sequence = 0;

  constructor(private readonly clock: MicrosClock = wallClockMicros) {}

  next(): string {
    const now = Math.floor(this.clock());
    if (now > this.lastMicros) {
      this.lastMicros = now;
      this.sequence = 0;
    } else if (++this.sequence > 9999) {
      this.lastMicros += 1;
      this.sequence = 0;
    }
    return String(this.lastMicros).padStart(16, '0') + String(this.sequence).padStart(4, '0');
  }
}

/** The process-wide source, shared by every broker in the process. */
export const queueNumbers = new QueueNumbers();
