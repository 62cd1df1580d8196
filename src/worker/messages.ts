/**
 * Messages as they come, for a loop of the caller's own: the caller acks or nacks each.
 */
import type { Message } from '../format/message.js';
import type { Broker } from '../store/broker.js';
import { type Timers, yieldToEventLoop } from '../store/timers.js';
import { IdleClock } from './idle.js';


/** Options of {@link messages}. Durations are in seconds. */
export interface MessagesOptions {
  /**
   * Aborting it ends the iteration (a wait under way returns at once).
   * @default none
   */
  signal?: AbortSignal;
  /**
   * End once nothing in the queue could become work for this many seconds (as for workers).
   * @default never: wait for messages until the signal aborts
   */
  idleExit?: number;
  /**
   * With idleExit: messages in flight elsewhere do not keep the iterator (only ready and due ones do).
   * @default false
   */
  idleIgnoresInFlight?: boolean;
  /**
   * Lease of each message taken, in whole seconds. The iterator does not renew it: ack in
   * time, or hold it with a {@link LeaseRenewer}.
   * @default the message's own lease, else the queue's `message_timeout` setting
   */
  lease?: number;
  /**
   * The timers of the idle clock.
   * @default the real ones
   */
  timers?: Timers;
}

/**
 * The messages of a queue as an async iterator: each is taken as it comes (waiting while
 * the queue is empty) and is the caller's to ack or nack. Ends when the signal aborts, or
 * once nothing in the queue could become work for `idleExit` seconds (as for workers:
 * nothing ready, nothing in flight anywhere unless `idleIgnoresInFlight`, nothing delayed
 * that is due within that time).
 *
 * @typeParam T - the payloads' type: a promise of the caller's, not checked at run time
 * @param broker - the broker of the queue's root
 * @param queue - the queue
 * @param options - when to end, the lease (seconds)
 * @returns the messages, in flight, as they come
 * @throws {@link DdmqError} while iterating: the errors of {@link Broker.consume}
 * @example
 * ```ts
 * for await (const msg of messages<{ file: string }>(broker, 'tasks', { idleExit: 60 })) {
 *   await convert(msg.message.file);
 *   await broker.ack(msg);
 * }
 * ```
 */
export async function* messages<T = unknown>(broker: Broker, queue: string, options: MessagesOptions = {}): AsyncGenerator<Message<T>, void, undefined> {
  const idle = new IdleClock(broker, queue, { idleExit: options.idleExit, ignoreInFlight: options.idleIgnoresInFlight === true }, options.timers);
  // Messages handed out that the caller may still hold (a batch it has not acked yet):
  // they are not work that can still come, and must not keep the iterator waiting.
  const handedOut = new Set<Message>();
  while (!options.signal?.aborted) {
    await yieldToEventLoop();
    const [message] = await broker.consume<T>(queue, { wait: idle.wait(), signal: options.signal, lease: options.lease });
    if (message !== undefined) {
      if (options.idleExit !== undefined && options.idleIgnoresInFlight !== true) {
        handedOut.add(message);
        if (handedOut.size > HANDED_OUT_KEPT) handedOut.delete(handedOut.values().next().value!);
      }
      yield message;
      idle.busy();
    } else if (!options.signal?.aborted && (await idle.over(await stillHeld(broker, handedOut)))) {
      return;
    }
  }
}

/** How many handed-out messages the iterator remembers (the oldest are forgotten). */
const HANDED_OUT_KEPT = 10_000;

/** How many of the messages are still in flight under the name they were handed out with (or renewed to); forgets the others. */
async function stillHeld(broker: Broker, handedOut: Set<Message>): Promise<number> {
  for (const m of handedOut) if (!(await broker.isInFlight(m))) handedOut.delete(m);
  return handedOut.size;
}
