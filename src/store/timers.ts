/**
 * Time as the waiting parts (the folder watcher, the worker, lease renewal) see it: one
 * object they take as an option, so that tests can pass a clock they move by hand and
 * have every timer fire exactly when it is due, without waiting.
 */

export interface Timers {
  /** Milliseconds on the clock the timers run by (any origin): what their delays are measured on. */
  now(): number;
  /** Calls `callback` once, `ms` from now; returns a handle for clearTimeout. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer; a handle of a timer that already fired (or undefined) is ignored. */
  clearTimeout(handle: unknown): void;
}

/**
 * The real timers. Their clock is the monotonic one that Node's timers run by, so that a
 * change of the system time neither fires nor holds back a renewal.
 */
// process.hrtime, not performance.now: the latter loads perf_hooks, ~2 ms of a short command.
export const systemTimers: Timers = {
  now: () => Number(process.hrtime.bigint()) / 1e6,
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
};

/** Lets timers, I/O and signals run before going on (a loop of synchronous calls would hold them off). */
export const yieldToEventLoop = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
