/**
 * Dead letters: where a queue's messages go that are not to be requeued (its dead_letter
 * setting), and redrive, which moves them back to where they came from.
 */
import { join } from 'node:path';
import { DdmqError } from '../format/errors.js';
import { ReadyListing } from '../format/listing.js';
import { Message } from '../format/message.js';
import { checkQueueName, isQueueName, parseReadyName } from '../format/names.js';
import { listIfExists } from './fsx.js';
import type { DeadLetterSink } from './host.js';
import type { Queue } from './queue.js';
import type { RootQueues } from './root-queues.js';

/** Options of `Broker.redrive`. */
export interface RedriveOptions {
  /**
   * Move them to this queue instead of where each came from.
   * @default each dead letter's own origin queue
   */
  to?: string;
  /**
   * Only the messages with these ids.
   * @default every dead letter
   */
  ids?: string[];
  /**
   * At most this many.
   * @default no limit
   */
  limit?: number;
}

/** What `Broker.redrive` did. */
export interface RedriveResult {
  /** Dead letters moved back. */
  moved: number;
  /** Dead letters with nowhere to go (no origin, or their queue is gone): they stay. */
  skipped: number;
  /** Ids asked for that are not in the dead-letter queue. */
  missing: string[];
}

/** What dead letters need of the broker: its open queues, and whether it may make missing ones. */
export interface QueueOpener {
  readonly create: boolean;
  /** The Queue object for a name, checked to exist (or made, with create). */
  queue(name: string): Promise<Queue>;
  /** Whether this process has the queue open already. */
  isOpen(name: string): boolean;
}

export class DeadLetters implements DeadLetterSink {
  constructor(
    private readonly root: string,
    private readonly queues: QueueOpener,
    private readonly folders: RootQueues,
  ) {}

  /** Writes a message into a queue (made if missing) as a new ready file; for dead letters and redrive. */
  async put(queue: string, msg: Message): Promise<string> {
    checkQueueName(queue);
    if (!this.queues.isOpen(queue)) await this.folders.create(queue);
    return (await this.queues.queue(queue)).put(msg);
  }

  /**
   * Moves dead letters back: each message of `deadQueue` (or only those with the given
   * ids, or the first `limit`) goes to the queue it came from (or `to`), with its requeue
   * counter reset. A target queue that does not exist is made only with `create`: `to` is
   * refused (QUEUE_MISSING) before anything moves, and a message whose own queue is gone
   * stays (counted in `skipped`). Ids that were asked for and not found are in `missing`.
   */
  async redrive(deadQueue: string, options: RedriveOptions = {}): Promise<RedriveResult> {
    const create = this.queues.create;
    if (options.to !== undefined) {
      checkQueueName(options.to);
      if (!create && this.folders.state(options.to) !== 'queue') {
        throw new DdmqError('QUEUE_MISSING', `queue ${options.to} does not exist in ${this.root} (create it, or redrive with -f / { create: true })`, {
          path: join(this.root, options.to),
        });
      }
      await this.queues.queue(options.to); // checks its folders (or makes it, with create) before anything moves
    }
    const dq = await this.queues.queue(deadQueue);
    const wanted = options.ids ? new Set(options.ids) : undefined;
    const found = new Set<string>();
    let moved = 0;
    let skipped = 0;
    const listing = ReadyListing.of(listIfExists(dq.dir) ?? []);
    for (let name = listing.next(); name !== undefined; name = listing.next()) {
      if (options.limit !== undefined && moved >= options.limit) break;
      const id = parseReadyName(name)!.id;
      if (wanted && !wanted.has(id)) continue;
      // RACE: another redrive (or a consumer of the dead-letter queue) took it first: skipped.
      const msg = dq.takeByName(name);
      if (msg === null) continue;
      found.add(id);
      const history = msg.extra.dead_letter as { from?: unknown } | undefined;
      const target = options.to ?? (typeof history?.from === 'string' && isQueueName(history.from) ? history.from : undefined);
      if (target === undefined || (options.to === undefined && !create && this.folders.state(checkQueueName(target)) !== 'queue')) {
        // Nowhere to send it: it goes back where it was, untouched.
        await dq.release(msg);
        skipped++;
        continue;
      }
      const { dead_letter: _, ...extra } = msg.extra;
      await this.put(target, new Message({ ...msg, requeueCounter: 0, extra }));
      dq.ack(msg);
      moved++;
    }
    const missing = wanted ? [...wanted].filter((id) => !found.has(id)) : [];
    return { moved, skipped, missing };
  }
}
