/**
 * Workers: run a handler for each message of a queue, with a concurrency limit, leases
 * kept alive while handlers run, and an orderly stop. Success acks; a thrown error nacks
 * (requeue within the message's and the queue's limits).
 */
import { DdmqError, isDdmqError } from '../format/errors.js';
import type { Message } from '../format/message.js';
import type { Broker } from '../store/broker.js';

export type Handler = (message: Message, context: { signal: AbortSignal }) => unknown;

export interface WorkOptions {
  /** Handlers running at once (default 1). */
  concurrency?: number;
  /**
   * Lease of each message in seconds (default: the message's own timeout, else the
   * queue's message_timeout). While its handler runs the lease is renewed every third of
   * it, so a task may take longer than its lease as long as its process lives; if the
   * process dies, the message comes back within one lease (plus expiry_grace).
   */
  lease?: number;
  /** Seconds stop() lets running handlers finish before it aborts them and requeues their messages (default 30). */
  grace?: number;
  /** Stop after this many messages were taken. */
  maxMessages?: number;
  /** Stop once the queue has been empty, with nothing running, for this many seconds. */
  idleExit?: number;
  /** Aborting it stops the worker, as stop() does. */
  signal?: AbortSignal;
  /** Told of every message that finishes. */
  onEvent?: (event: WorkEvent) => void;
}

export interface WorkEvent {
  type: 'done' | 'failed' | 'released' | 'lease-lost';
  message: Message;
  /** For 'failed': what nack did; for 'released': requeued. */
  action?: 'requeued' | 'dropped' | 'dead-lettered';
  error?: unknown;
  /** Milliseconds the handler ran. */
  ms: number;
}

export interface WorkStats {
  /** Handled and acked. */
  done: number;
  /** The handler threw: nacked (requeued or dropped). */
  failed: number;
  /** Still running at stop after the grace period: requeued. */
  released: number;
  /** Running now. */
  running: number;
}

export interface WorkHandle {
  /** Counters, live. */
  readonly stats: WorkStats;
  /** Resolves when the worker has ended (stopped, maxMessages or idleExit reached). */
  readonly done: Promise<WorkStats>;
  /** Stops taking messages, lets running handlers finish within the grace, then requeues the rest. */
  stop(grace?: number): Promise<WorkStats>;
}

interface Task {
  message: Message;
  controller: AbortController;
  finished: Promise<void>;
  released: boolean;
}

/** Starts a worker on a queue; see WorkOptions. */
export function work(broker: Broker, queue: string, handler: Handler, options: WorkOptions = {}): WorkHandle {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new DdmqError('INVALID_ARGUMENT', `invalid concurrency ${JSON.stringify(concurrency)}: expected a whole number, at least 1`);
  }
  for (const key of ['lease', 'grace', 'maxMessages', 'idleExit'] as const) {
    const v = options[key];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) {
      throw new DdmqError('INVALID_ARGUMENT', `invalid ${key} ${JSON.stringify(v)}: expected a number, 0 or more`);
    }
  }
  const stats: WorkStats = { done: 0, failed: 0, released: 0, running: 0 };
  const tasks = new Set<Task>();
  const stopping = new AbortController();
  let grace = options.grace ?? 30;
  let taken = 0;
  const emit = (event: WorkEvent) => options.onEvent?.(event);
  if (options.signal?.aborted) stopping.abort();
  options.signal?.addEventListener('abort', () => stopping.abort(), { once: true });
  const stopped = new Promise<void>((resolve) => stopping.signal.addEventListener('abort', () => resolve(), { once: true }));

  const run = (message: Message, lease: number): Task => {
    const controller = new AbortController();
    const started = Date.now();
    const task: Task = { message, controller, released: false, finished: Promise.resolve() };
    // Renew the lease every third of it while the handler runs.
    const renew = setInterval(() => {
      broker.extend(message, lease).catch((err: unknown) => {
        if (!isDdmqError(err, 'NOT_IN_FLIGHT') || task.released) return;
        emit({ type: 'lease-lost', message, error: err, ms: Date.now() - started });
      });
    }, Math.max(1000, (lease * 1000) / 3));
    task.finished = (async () => {
      try {
        await handler(message, { signal: controller.signal });
        if (task.released) return;
        await broker.ack(message);
        stats.done++;
        emit({ type: 'done', message, ms: Date.now() - started });
      } catch (error) {
        if (task.released) return;
        if (isDdmqError(error, 'NOT_IN_FLIGHT')) {
          emit({ type: 'lease-lost', message, error, ms: Date.now() - started });
          return;
        }
        try {
          const reason = error instanceof Error ? error.message : String(error);
          const { action } = await broker.nack(message, { error: reason });
          stats.failed++;
          emit({ type: 'failed', message, action, error, ms: Date.now() - started });
        } catch (nackError) {
          if (!isDdmqError(nackError, 'NOT_IN_FLIGHT')) throw nackError;
          emit({ type: 'lease-lost', message, error, ms: Date.now() - started });
        }
      } finally {
        clearInterval(renew);
        tasks.delete(task);
        stats.running = tasks.size;
      }
    })();
    tasks.add(task);
    stats.running = tasks.size;
    return task;
  };

  const loop = async (): Promise<WorkStats> => {
    const settings = await broker.settings(queue);
    let idleSince = Date.now();
    while (!stopping.signal.aborted && (options.maxMessages === undefined || taken < options.maxMessages)) {
      if (tasks.size >= concurrency) {
        await Promise.race([...[...tasks].map((t) => t.finished), stopped]);
        continue;
      }
      // Wait a while for a message, but wake up to check idleExit and stop.
      const wait = options.idleExit === undefined ? 5 : Math.max(0, Math.min(5, options.idleExit - (Date.now() - idleSince) / 1000));
      const [message] = await broker.consume(queue, { wait, signal: stopping.signal, timeout: options.lease });
      if (message === undefined) {
        if (tasks.size > 0) idleSince = Date.now();
        if (options.idleExit !== undefined && tasks.size === 0 && Date.now() - idleSince >= options.idleExit * 1000) break;
        continue;
      }
      taken++;
      idleSince = Date.now();
      run(message, options.lease ?? message.timeout ?? settings.message_timeout);
    }
    await finish();
    return { ...stats };
  };

  // Lets running handlers finish within the grace; then aborts them and requeues their messages.
  const finish = async () => {
    if (tasks.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, grace * 1000)));
    await Promise.race([Promise.all([...tasks].map((t) => t.finished)), graceOver]);
    clearTimeout(timer);
    for (const task of [...tasks]) {
      task.released = true;
      task.controller.abort();
      try {
        await broker.nack(task.message, { requeue: true });
        stats.released++;
        emit({ type: 'released', message: task.message, action: 'requeued', ms: 0 });
      } catch (err) {
        if (!isDdmqError(err, 'NOT_IN_FLIGHT')) throw err;
      }
      tasks.delete(task);
    }
    stats.running = tasks.size;
  };

  const done = loop();
  return {
    stats,
    done,
    stop(stopGrace?: number) {
      if (stopGrace !== undefined) grace = stopGrace;
      stopping.abort();
      return done;
    },
  };
}

/**
 * The messages of a queue as an async iterator: each is taken as it comes (waiting while
 * the queue is empty) and is the caller's to ack or nack. Ends when the signal aborts, or
 * once the queue has been empty for `idleExit` seconds.
 */
export async function* messages(
  broker: Broker,
  queue: string,
  options: { signal?: AbortSignal; idleExit?: number; lease?: number } = {},
): AsyncGenerator<Message, void, undefined> {
  let idleSince = Date.now();
  while (!options.signal?.aborted) {
    const wait = options.idleExit === undefined ? 5 : Math.max(0, Math.min(5, options.idleExit - (Date.now() - idleSince) / 1000));
    const [message] = await broker.consume(queue, { wait, signal: options.signal, timeout: options.lease });
    if (message !== undefined) {
      yield message;
      idleSince = Date.now();
    } else if (options.idleExit !== undefined && Date.now() - idleSince >= options.idleExit * 1000) {
      return;
    }
  }
}
