/**
 * The back door from a Broker to what its queues are given, for the worker and the command
 * line: kept in a WeakMap by the broker, so that none of it is a member of the class users
 * get, and not exported from the package's entry.
 */
import { DdmqError } from '../format/errors.js';
import type { Message } from '../format/message.js';
import type { RecordDetails } from '../format/records.js';
import type { History } from './history.js';
import type { QueueContext } from './host.js';
import type { Queue } from './queue.js';
import type { SettingsCache } from './settings-cache.js';

/**
 * What the worker and the command line use of a broker beyond its public methods: the
 * pieces its queues are given, its Queue objects, and the worker's own records. Not part
 * of the package's entry: reached through brokerInternals().
 */
export interface BrokerInternals extends QueueContext {
  /** The broker's settings cache. */
  readonly settings: SettingsCache;
  /** The broker's task records and presence files. */
  readonly history: History;
  /** The Queue object for a name, checked to exist (or created, with `create`). */
  queue(name: string): Promise<Queue>;
  /**
   * A worker lost a message's lease: its task ends without an ack or a nack, and only its
   * record says so (if the queue keeps records).
   */
  recordLeaseLost(msg: Message, details?: RecordDetails): Promise<void>;
}

const internals = new WeakMap<object, BrokerInternals>();

/** Called once by each broker as it is made. */
export function registerInternals(broker: object, handle: BrokerInternals): void {
  internals.set(broker, handle);
}

/**
 * A broker's internals (see BrokerInternals), for src/worker and src/cli.
 * @param broker - a broker made by Broker.open
 * @throws {@link index!DdmqError} `INVALID_ARGUMENT` if it is not one
 */
export function brokerInternals(broker: object): BrokerInternals {
  const found = internals.get(broker);
  if (found === undefined) throw new DdmqError(
      'INVALID_ARGUMENT',
      'not a broker opened with Broker.open of this copy of ddmq (a program that both imports and requires ddmq loads two: use the work() and LeaseRenewer of the copy that opened the broker)',
    );
  return found;
}
