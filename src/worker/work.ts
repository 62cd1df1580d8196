/**
 * Workers: run a handler for each message of a queue, with a concurrency limit, leases
 * kept alive while handlers run, and an orderly stop.
 *
 * Each message taken ends in exactly one event:
 * - done: the handler returned; acked.
 * - failed: the handler threw; nacked (requeued after the retry backoff, dropped or
 *   dead-lettered, by the settings).
 * - released: the worker stopped it (stop() or a store error), or the handler threw
 *   TaskInterrupted; given back untried, ready at once, not counted as an attempt.
 * - lease-lost: the lease could not be kept (another client took the message back); the
 *   handler's signal is aborted and the message is neither acked nor nacked.
 * - error: the store refused to ack, nack or release it; the worker ends with that error.
 */
import { DdmqError, isDdmqError } from '../format/errors.js';
import { brand } from '../format/brand.js';
import type { Message } from '../format/message.js';
import { MAX_SECONDS } from '../format/settings.js';
import type { Broker } from '../store/broker.js';
import { brokerInternals } from '../store/internals.js';
import type { RecordDetails } from '../format/records.js';
import { systemTimers, yieldToEventLoop } from '../store/timers.js';
import { IdleClock } from './idle.js';
import { LeaseRenewer } from './lease.js';
import type { Handler, WorkEvent, WorkHandle, WorkOptions, WorkStats } from './work-types.js';

export type { Handler, HandlerContext, WorkEvent, WorkEventType, WorkHandle, WorkOptions, WorkStats } from './work-types.js';
export { messages, type MessagesOptions } from './messages.js';


/**
 * Thrown by a handler whose task was interrupted from outside rather than failed: its
 * message is released (ready again at once, not counted as an attempt), not nacked.
 * `exitCode` and `signal`, when given, say how the task's process ended (killed by the
 * stop's SIGTERM, or exited by itself meanwhile) and go to the release's task record.
 */
export class TaskInterrupted extends Error {
  /** The exit code of the task's process, when it has one. */
  readonly exitCode?: number | null;
  /** The signal that ended the task's process (`SIGTERM`), when it has one. */
  readonly signal?: string | null;

  /**
   * @param message - why it was interrupted
   * @param options - the cause, and how the task's process ended
   */
  constructor(message: string, options?: { cause?: unknown; exitCode?: number | null; signal?: string | null }) {
    super(message, options);
    this.name = 'TaskInterrupted';
    if (options?.exitCode !== undefined) this.exitCode = options.exitCode;
    if (options?.signal !== undefined) this.signal = options.signal;
  }
}
// A handler may throw it from the other build (ES module or CommonJS) than work()'s.
brand(TaskInterrupted, 'TaskInterrupted');

type Outcome = { ok: true; value?: unknown } | { ok: false; error: unknown };

/**
 * What a task record can say of how a handler ended: the `exitCode` and `signal` of what
 * it returned or threw, if it has them (`ddmq work`'s runner returns and throws both).
 */
function endOf(outcome: Outcome): RecordDetails {
  const v = outcome.ok ? outcome.value : outcome.error;
  if (typeof v !== 'object' || v === null) return {};
  const { exitCode, signal } = v as { exitCode?: unknown; signal?: unknown };
  const out: RecordDetails = {};
  if (exitCode === null || (typeof exitCode === 'number' && Number.isSafeInteger(exitCode))) out.exitCode = exitCode;
  if (signal === null || typeof signal === 'string') out.signal = signal;
  return out;
}

interface Task {
  message: Message;
  controller: AbortController;
  started: number;
  /** Why its signal was aborted. */
  aborted?: 'stop' | 'lease-lost';
  finished: Promise<void>;
}


function checkOptions(options: WorkOptions): void {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new DdmqError('INVALID_ARGUMENT', `invalid concurrency ${JSON.stringify(concurrency)}: expected a whole number, at least 1`);
  }
  for (const key of ['grace', 'abortWait', 'maxMessages', 'idleExit'] as const) {
    const v = options[key];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= MAX_SECONDS)) {
      throw new DdmqError('INVALID_ARGUMENT', `invalid ${key} ${JSON.stringify(v)}: expected a number, 0 or more`);
    }
  }
  const lease = options.lease;
  if (lease !== undefined && !(Number.isSafeInteger(lease) && lease >= 1 && lease <= MAX_SECONDS)) {
    throw new DdmqError('INVALID_ARGUMENT', `invalid lease ${JSON.stringify(lease)}: expected a whole number of seconds, at least 1`);
  }
}

/**
 * Starts a worker on a queue: it takes messages as they come, runs `handler` on up to
 * `concurrency` at once, keeps their leases alive while the handlers run, acks what
 * returns and nacks what throws. It runs until stopped, `maxMessages` or `idleExit`.
 *
 * @typeParam T - the payloads' type: a promise of the caller's, not checked at run time
 * @param broker - the broker of the queue's root
 * @param queue - the queue
 * @param handler - the task of one message
 * @param options - concurrency, lease (seconds), when to end
 * @returns the running worker: its counters, `done`, and `stop()`
 * @throws {@link DdmqError} `INVALID_ARGUMENT` (an option out of range), at once; the
 *   store's errors (`QUEUE_MISSING`, `IO`, ...) later, as the rejection of `done`
 * @example
 * ```ts
 * interface Task { file: string }
 * const worker = work<Task>(broker, 'tasks', async (msg, { signal }) => {
 *   await convert(msg.message.file, { signal });
 * }, { concurrency: 4, idleExit: 60 });
 * process.on('SIGTERM', () => worker.stop(30));
 * console.log(await worker.done); // { done, failed, released, leaseLost, running }
 * ```
 */
export function work<T = unknown>(broker: Broker, queue: string, handler: Handler<T>, options: WorkOptions = {}): WorkHandle {
  checkOptions(options);
  const concurrency = options.concurrency ?? 1;
  const abortWait = options.abortWait ?? 10;
  const timers = options.timers ?? systemTimers;
  const clock = brokerInternals(broker).clock;
  /** One timer renews the leases of all running tasks. */
  const renewer = new LeaseRenewer(broker, { timers });
  const stats: WorkStats = { done: 0, failed: 0, released: 0, leaseLost: 0, running: 0 };
  const tasks = new Set<Task>();
  /** Aborted when the worker stops taking messages. */
  const stopping = new AbortController();
  let grace = options.grace ?? 30;
  let graceEnds: number | undefined;
  let graceTimer: unknown;
  let graceOver = false;
  let failure: { error: unknown } | undefined;
  let taken = 0;
  let ended = false;
  const stopped = new Promise<void>((resolve) => stopping.signal.addEventListener('abort', () => resolve(), { once: true }));

  const emit = (event: WorkEvent) => {
    try {
      options.onEvent?.(event);
    } catch (err) {
      fail(err);
    }
  };

  const abortTask = (task: Task, why: 'stop' | 'lease-lost') => {
    if (task.aborted !== undefined) return;
    task.aborted = why;
    task.controller.abort(
      why === 'stop'
        ? new TaskInterrupted(`the worker is stopping: ${queue}/${task.message.id} is given back`)
        : new DdmqError('NOT_IN_FLIGHT', `the lease of ${queue}/${task.message.id} was lost`),
    );
  };

  /** The grace is over: every running handler is aborted, and its message released once it returns. */
  const endGrace = () => {
    graceOver = true;
    timers.clearTimeout(graceTimer);
    for (const task of tasks) abortTask(task, 'stop');
  };

  const beginStop = (newGrace?: number) => {
    if (newGrace !== undefined) grace = newGrace;
    const ends = timers.now() + grace * 1000;
    if (!ended && !graceOver && (graceEnds === undefined || ends < graceEnds)) {
      graceEnds = ends;
      timers.clearTimeout(graceTimer);
      if (grace === 0) endGrace();
      else graceTimer = timers.setTimeout(endGrace, ends - timers.now());
    }
    stopping.abort();
  };

  /** A store error (or a throwing onEvent): take nothing more, stop running handlers now. */
  const fail = (error: unknown) => {
    failure ??= {
      error: isDdmqError(error)
        ? new DdmqError(error.code, `worker on queue ${queue} stopped: ${error.message}`, { path: error.path, osCode: error.osCode, cause: error })
        : error,
    };
    stopping.abort();
    endGrace();
  };

  if (options.signal?.aborted) beginStop();
  options.signal?.addEventListener('abort', () => beginStop(), { once: true });

  /** Runs the handler; once its signal is aborted it has abortWait seconds to return. */
  const runHandler = (task: Task): Promise<Outcome> => {
    const settled: Promise<Outcome> = Promise.resolve()
      .then(() => handler(task.message as Message<T>, { signal: task.controller.signal }))
      .then(
        (value: unknown) => ({ ok: true, value }) as const,
        (error: unknown) => ({ ok: false, error }) as const,
      );
    let timer: unknown;
    const onAbort = () => {
      timer = timers.setTimeout(() => giveUp({ ok: false, error: new Error(`the handler did not return within ${abortWait} s of its abort`) }), abortWait * 1000);
    };
    let giveUp: (o: Outcome) => void = () => {};
    const abandoned = new Promise<Outcome>((resolve) => (giveUp = resolve));
    if (task.controller.signal.aborted) onAbort();
    else task.controller.signal.addEventListener('abort', onAbort, { once: true });
    return Promise.race([settled, abandoned]).finally(() => {
      timers.clearTimeout(timer);
      task.controller.signal.removeEventListener('abort', onAbort);
    });
  };

  const start = (message: Message, lease: number) => {
    const controller = new AbortController();
    const task: Task = { message, controller, started: clock.now(), finished: Promise.resolve() };
    const ms = () => clock.now() - task.started;
    let reportedLost = false;
    let lostError: unknown;
    const leaseLost = (error: unknown) => {
      if (reportedLost) return;
      reportedLost = true;
      lostError = error;
      stats.leaseLost++;
      abortTask(task, 'lease-lost');
      emit({ type: 'lease-lost', message, error, ms: ms() });
    };
    const held = renewer.hold(message, lease, {
      onLost: leaseLost,
      onWarning: (error) => emit({ type: 'warning', message, error, ms: ms() }),
    });
    // A worker that is stopping aborts what it starts at once.
    if (graceOver) abortTask(task, 'stop');
    task.finished = (async () => {
      try {
        const outcome = await runHandler(task);
        await held.release();
        const end = endOf(outcome);
        if (reportedLost) {
          await recordLost(message, end, lostError);
          return;
        }
        try {
          if (task.aborted === 'stop' || (!outcome.ok && outcome.error instanceof TaskInterrupted)) {
            const { action } = await broker.release(message, end);
            stats.released++;
            emit({ type: 'released', message, action, ...(outcome.ok ? {} : { error: outcome.error }), ms: ms() });
          } else if (outcome.ok) {
            await broker.ack(message, end);
            stats.done++;
            emit({ type: 'done', message, ms: ms() });
          } else {
            const reason = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
            const { action, due } = await broker.nack(message, { error: reason, exitCode: end.exitCode, signal: end.signal });
            stats.failed++;
            emit({ type: 'failed', message, action, ...(due === undefined ? {} : { due }), error: outcome.error, ms: ms() });
          }
        } catch (err) {
          if (isDdmqError(err, 'NOT_IN_FLIGHT')) {
            leaseLost(err);
            await recordLost(message, end, err);
          } else {
            emit({ type: 'error', message, error: err, ms: ms() });
            fail(err);
          }
        }
      } catch (err) {
        fail(err); // a bug of ours; never left unhandled
      } finally {
        tasks.delete(task);
        stats.running = tasks.size;
        presence.changed();
      }
    })();
    tasks.add(task);
    stats.running = tasks.size;
    presence.changed();
  };

  /** The record of a task whose lease was lost; failing to keep it is only a warning. */
  const recordLost = async (message: Message, end: RecordDetails, error: unknown) => {
    try {
      await brokerInternals(broker).recordLeaseLost(message, { ...end, error: error instanceof Error ? error.message : String(error) });
    } catch (err) {
      emit({ type: 'warning', message, error: err, ms: 0 });
    }
  };

  const releaseUntried = async (message: Message) => {
    try {
      const { action } = await broker.release(message);
      stats.released++;
      emit({ type: 'released', message, action, ms: 0 });
    } catch (err) {
      if (isDdmqError(err, 'NOT_IN_FLIGHT')) {
        stats.leaseLost++;
        emit({ type: 'lease-lost', message, error: err, ms: 0 });
        await recordLost(message, {}, err);
      } else {
        emit({ type: 'error', message, error: err, ms: 0 });
        fail(err);
      }
    }
  };

  /** The worker's presence file (ROOT/.ddmq/workers), once started. */
  let presence = { changed() {}, stop() {} };

  const loop = async (): Promise<void> => {
    const settings = await broker.settings(queue);
    presence = await brokerInternals(broker).history.announceWorker(queue, () => ({
      queue,
      concurrency,
      done: stats.done,
      failed: stats.failed,
      released: stats.released,
      lease_lost: stats.leaseLost,
      running: [...tasks].map((t) => ({ id: t.message.id, since: t.started })),
    }));
    const idle = new IdleClock(broker, queue, { idleExit: options.idleExit, ignoreInFlight: options.idleIgnoresInFlight === true }, timers);
    while (!stopping.signal.aborted && (options.maxMessages === undefined || taken < options.maxMessages)) {
      await yieldToEventLoop();
      if (stopping.signal.aborted) break;
      if (tasks.size >= concurrency) {
        await Promise.race([...[...tasks].map((t) => t.finished), stopped]);
        idle.busy(); // the idle time counts from the end of the last task
        continue;
      }
      const [message] = await broker.consume(queue, { wait: idle.wait(), signal: stopping.signal, lease: options.lease });
      if (message === undefined) {
        if (stopping.signal.aborted) break;
        if (tasks.size > 0) idle.busy();
        else if (await idle.over()) break;
        continue;
      }
      taken++;
      idle.busy();
      if (stopping.signal.aborted) {
        // Taken just as the stop came: given back untried.
        await releaseUntried(message);
        break;
      }
      start(message, options.lease ?? message.lease ?? settings.message_timeout);
    }
  };

  const run = async (): Promise<WorkStats> => {
    try {
      await loop();
    } catch (err) {
      fail(err);
    }
    // Running handlers finish (within the grace, if the worker is stopping).
    while (tasks.size > 0) await Promise.all([...tasks].map((t) => t.finished));
    presence.stop();
    ended = true;
    timers.clearTimeout(graceTimer);
    await renewer.close();
    if (failure !== undefined) throw failure.error;
    return { ...stats };
  };

  const done = run();
  done.catch(() => {}); // the caller hears of it through done; the process is not ended by it
  return {
    stats,
    done,
    stop(stopGrace?: number) {
      if (stopGrace !== undefined && !(typeof stopGrace === 'number' && stopGrace >= 0)) {
        throw new DdmqError('INVALID_ARGUMENT', `invalid grace ${JSON.stringify(stopGrace)}: expected a number, 0 or more`);
      }
      beginStop(stopGrace);
      return done;
    },
  };
}
