/**
 * The types of a worker: its handler, options, events, counters and handle (see work.ts).
 */
import type { Message } from '../format/message.js';
import type { NackResult } from '../store/queue.js';
import type { Timers } from '../store/timers.js';

/** What a handler is given besides its message. */
export interface HandlerContext {
  /**
   * Aborted when the handler must stop: the worker stops (after its grace), or the
   * message's lease was lost. Pass it on to what the handler waits for.
   */
  signal: AbortSignal;
}

/**
 * Runs the task of one message. Returning (or resolving) acks the message; throwing
 * nacks it (or releases it, for a {@link TaskInterrupted}). A returned or thrown object's
 * `exitCode` and `signal`, if it has them, go to the task record.
 * @typeParam T - the payload's type: a promise of the caller's, not checked at run time
 */
export type Handler<T = unknown> = (message: Message<T>, context: HandlerContext) => unknown;

/** Options of {@link work}. Durations are in seconds. */
export interface WorkOptions {
  /**
   * Handlers running at once.
   * @default 1
   */
  concurrency?: number;
  /**
   * Lease of each message in whole seconds. While its handler runs the lease is renewed
   * every third of it, so a task may take longer than its lease as long as its process
   * lives; if the process dies, the message comes back within one lease (plus expiry_grace).
   * @default the message's own lease, else the queue's `message_timeout` setting
   */
  lease?: number;
  /**
   * Seconds stop() lets running handlers finish before it aborts them and releases their messages.
   * @default 30
   */
  grace?: number;
  /**
   * Seconds a handler has to return once its signal is aborted. After that its message is
   * released anyway (or, its lease lost, its place freed) and what it does later is ignored.
   * @default 10
   */
  abortWait?: number;
  /**
   * Stop after this many messages were taken (running handlers finish first).
   * @default no limit
   */
  maxMessages?: number;
  /**
   * End once nothing in the queue could become work for this many seconds: nothing
   * ready, nothing in flight on any host, nothing delayed that is due within this time.
   * @default never: wait for messages until stopped
   */
  idleExit?: number;
  /**
   * With idleExit: messages in flight elsewhere do not keep the worker (only ready and due ones do).
   * @default false
   */
  idleIgnoresInFlight?: boolean;
  /**
   * Aborting it stops the worker, as stop() does.
   * @default none
   */
  signal?: AbortSignal;
  /**
   * Told of every message that ends, and of warnings about one (a lease renewal that failed).
   * @default none
   */
  onEvent?: (event: WorkEvent) => void;
  /**
   * The timers it waits with, and the clock of the idle time: lease renewals, the grace,
   * abortWait. Its other times (of events, when delayed messages are due, when a lease
   * runs out) are the broker's clock (its `now` option).
   * @default the real ones
   */
  timers?: Timers;
}

/** How a message ended in a worker (see the top of this file), or `warning`: a problem that did not end it. */
export type WorkEventType = 'done' | 'failed' | 'released' | 'lease-lost' | 'warning' | 'error';

/** What a worker tells `onEvent` of one message. */
export interface WorkEvent {
  /** What happened. */
  type: WorkEventType;
  /** The message it happened to. */
  message: Message;
  /** For 'failed': what nack did; for 'released': requeued. */
  action?: NackResult['action'];
  /** For 'failed' and requeued after a backoff: the epoch second it is ready again. */
  due?: number;
  /** failed: what the handler threw; lease-lost, warning, error: what the store said. */
  error?: unknown;
  /** Milliseconds since the handler started. */
  ms: number;
}

/** A worker's counters. */
export interface WorkStats {
  /** Handled and acked. */
  done: number;
  /** The handler threw: nacked (requeued after the backoff, dropped or dead-lettered). */
  failed: number;
  /** Stopped by the worker's stop (or interrupted): given back untried, ready at once. */
  released: number;
  /** Their lease was lost while they ran: neither acked nor nacked. */
  leaseLost: number;
  /** Running now. */
  running: number;
}

/** A running worker, as {@link work} returns it. */
export interface WorkHandle {
  /** Counters, live. */
  readonly stats: WorkStats;
  /**
   * Resolves when the worker has ended (stopped, maxMessages or idleExit reached). Rejects
   * with the store's error (a DdmqError) if the store refused an operation; running
   * handlers were then stopped and their messages released where possible. The worker
   * itself never leaves a rejection unhandled.
   */
  readonly done: Promise<WorkStats>;
  /**
   * Stops taking messages and lets running handlers finish within the grace; then aborts
   * their signals and releases their messages once they have returned. Called again, a
   * shorter grace applies (stop(0): abort them now).
   * @param grace - seconds; default: the worker's `grace` option
   * @returns as `done`
   * @throws {@link DdmqError} `INVALID_ARGUMENT` (a negative grace)
   */
  stop(grace?: number): Promise<WorkStats>;
}
