/**
 * One root folder of queues. Opening it checks that it is initialised (ROOT/ddmq.yaml);
 * with `create` it is made, and so are missing queues that are published to or consumed
 * from. The Broker is a façade: the settings cache (settings-cache.ts), the queue folders
 * (root-queues.ts), dead letters (dead-letters.ts) and the task records and presence files
 * (history.ts) do the work, and each Queue gets only the narrow pieces of host.ts.
 */
import { DdmqError, isDdmqError } from '../format/errors.js';
import type { Message } from '../format/message.js';
import { checkQueueName, isQueueName } from '../format/names.js';
import type { RecordDetails, TaskRecord } from '../format/records.js';
import type { Settings, SettingsLayer } from '../format/settings.js';
import type { WorkerInfo } from '../format/presence.js';
import { DeadLetters, type RedriveOptions, type RedriveResult } from './dead-letters.js';
import { startThreadPool } from './durable.js';
import { checkQueueFolders } from './folders.js';
import { History, type RecordsOptions, type StatsOptions, type StatsResult } from './history.js';
import { type BrokerOptions, type Clock, type QueueContext, reporter, type Reporter, type StoreConfig, storeConfig } from './host.js';
import { registerInternals } from './internals.js';
import type { RecordTail } from './record-reader.js';
import type { ReleaseResult } from './requeue.js';
import { prepareRoot, type QueueEntry, RootQueues } from './root-queues.js';
import { CLIENT_CLOCK_GRACE, type ClockState, ServerClock } from './server-clock.js';
import { inQueueFolder } from './folders.js';
import { listIfExists } from './fsx.js';
import { SettingsCache } from './settings-cache.js';
import {
  type CleanOptions,
  type CleanResult,
  type ConsumeOneOptions,
  type ConsumeOptions,
  type NackOptions,
  type NackResult,
  type PeekOptions,
  type Peeked,
  type PublishOptions,
  type PurgeResult,
  Queue,
  type QueueCounts,
} from './queue.js';

export type { RedriveOptions, RedriveResult } from './dead-letters.js';
export type { BrokerOptions } from './host.js';
export type { RecordsOptions, StatsOptions, StatsResult } from './history.js';
export type { ReleaseResult } from './requeue.js';
export type { ClockState } from './server-clock.js';
export type { QueueEntry } from './root-queues.js';

/**
 * The default of `serverClock` from the environment: DDMQ_SERVER_CLOCK=0 turns the file
 * server's clock off, 1 (or unset, or empty) keeps it on; any other value ("false", "off")
 * is refused rather than silently taken for on.
 */
function serverClockFromEnv(): boolean {
  const value = process.env.DDMQ_SERVER_CLOCK;
  if (value === undefined || value === '' || value === '1') return true;
  if (value === '0') return false;
  throw new DdmqError(
    'INVALID_ARGUMENT',
    `invalid DDMQ_SERVER_CLOCK ${JSON.stringify(value)} in the environment: expected 0 (this host's clock) or 1 (the file server's clock, the default)`,
  );
}

/**
 * One root folder of queues, and every call a program makes on them: publish, consume,
 * ack, nack, release, extend, and the housekeeping. Open one with {@link Broker.open};
 * any number of brokers, in any number of processes and hosts, may share a root.
 *
 * Every error it gives is a {@link DdmqError} with a stable `code`. Durations are in
 * seconds in calls and in milliseconds (named `…Ms`) in the options of `open`.
 *
 * @example
 * ```ts
 * const broker = await Broker.open('/shared/ddmq', { create: true });
 * await broker.publish('tasks', { file: 'a.txt' });
 * const [msg] = await broker.consume<{ file: string }>('tasks');
 * if (msg) await broker.ack(msg);
 * ```
 */
export class Broker {
  /** The root folder, as given to open. */
  readonly root: string;
  readonly #config: StoreConfig;
  readonly #clock: Clock;
  readonly #serverClock: ServerClock | null;
  readonly #report: Reporter;
  readonly #settings: SettingsCache;
  readonly #folders: RootQueues;
  readonly #history: History;
  readonly #deadLetters: DeadLetters;
  readonly #queues = new Map<string, Queue>();
  readonly #context: QueueContext;

  private constructor(root: string, options: BrokerOptions) {
    this.root = root;
    const config = storeConfig(root, options);
    this.#config = config;
    this.#report = reporter(options.onWarning, options.log);
    const given = options.now;
    const server = given === undefined && (options.serverClock ?? serverClockFromEnv());
    this.#serverClock = server ? new ServerClock({ report: this.#report }) : null;
    const host = given ?? Date.now;
    this.#clock = this.#serverClock ?? { now: () => host(), grace: () => CLIENT_CLOCK_GRACE, local: () => host() };
    this.#settings = new SettingsCache(root, options.settingsTtlMs ?? 2000, config.fsync, this.#clock);
    this.#folders = new RootQueues(root, this.#settings, config.fsync, this.#report);
    this.#history = new History(root, this.#settings, this.#clock, this.#report);
    this.#deadLetters = new DeadLetters(root, { create: config.create, queue: (name) => this.#queue(name), isOpen: (name) => this.#queues.has(name) }, this.#folders);
    this.#context = { config, clock: this.#clock, report: this.#report, settings: this.#settings, deadLetters: this.#deadLetters, records: this.#history };
    registerInternals(this, {
      ...this.#context,
      settings: this.#settings,
      history: this.#history,
      queue: (name) => this.#queue(name),
      recordLeaseLost: async (msg: Message, details: RecordDetails = {}) => {
        const q = this.#queues.get(msg.queue) ?? (await this.#queue(msg.queue));
        if ((await q.settings()).history) q.record(msg, msg.filename, 'lease-lost', null, details);
      },
    });
  }

  /**
   * Opens a root folder of queues. Without `create`, the root must exist and be
   * initialised (hold a ddmq.yaml, as `ddmq init` makes it).
   *
   * @param root - the root folder
   * @param options - store options; their durations are in milliseconds
   * @returns the broker, ready to use
   * @throws {@link DdmqError} `ROOT_MISSING` or `ROOT_UNINITIALISED` (without `create`),
   *   `INVALID_ARGUMENT` (an empty root), `INVALID_SETTING` (a bad ddmq.yaml),
   *   `UNSAFE_PATH` (a link in place of the root's ddmq.yaml), `IO`
   * @example
   * ```ts
   * const broker = await Broker.open('/shared/ddmq', { create: true, pollIntervalMs: 500 });
   * ```
   */
  static async open(root: string, options: BrokerOptions = {}): Promise<Broker> {
    if (typeof root !== 'string' || root.length === 0 || root.includes('\0')) {
      throw new DdmqError('INVALID_ARGUMENT', `invalid root folder ${JSON.stringify(root)}`);
    }
    const broker = new Broker(root, options);
    prepareRoot(root, broker.#config.create);
    await broker.#settings.layer('');
    return broker;
  }

  /**
   * For a program about to publish large batches with fsync (publishMany): if `queue`
   * syncs, starts libuv's thread pool with 64 threads, so that a batch's syncs wait on the
   * disk together, not 4 at a time. It must come before the program's first asynchronous
   * file or network call, which starts the pool with the size it will keep (in an ES
   * module program that is before its first line: there set UV_THREADPOOL_SIZE in the
   * environment). Nothing happens if UV_THREADPOOL_SIZE is set.
   *
   * @param queue - the queue to be published to
   * @returns whether it set the size; the pool started earlier if the program made such a call before
   * @throws {@link DdmqError} the errors of {@link Broker.settings}
   */
  async startSyncThreads(queue: string): Promise<boolean> {
    const fsync = this.#config.fsync ?? (await this.settings(queue)).fsync;
    return fsync && startThreadPool();
  }

  // ---- settings ---------------------------------------------------------------------

  /**
   * The settings in force for a queue (defaults < root < queue), or for the root.
   * @param queue - the queue; none: the root's
   * @returns every setting, with its value in force
   * @throws {@link DdmqError} `INVALID_NAME`, `QUEUE_MISSING`, `INVALID_SETTING` (a bad ddmq.yaml), `UNSAFE_PATH`, `IO`
   */
  async settings(queue?: string): Promise<Settings> {
    // The default expiry_grace depends on the clock in force: measured first, if it never was.
    if (this.#serverClock !== null && this.#serverClock.state().kind === 'unmeasured') {
      // The root's: measured in its first queue (the first that is one; no queue, no measure).
      const where = queue !== undefined ? [queue] : (listIfExists(this.root) ?? []).filter(isQueueName).sort();
      for (const name of where) {
        try {
          if (this.clock(name).kind !== 'unmeasured') break;
        } catch (err) {
          // A queue that cannot be used (a link in its place): the next one, or the call's own error.
          if (!isDdmqError(err) || queue !== undefined) throw err;
        }
      }
    }
    return this.#settings.settings(queue);
  }

  /**
   * What one settings file says, read now (not cached): the root's, or a queue's.
   * @param queue - the queue; none: the root's
   * @returns the settings the file sets, and only those
   * @throws {@link DdmqError} `INVALID_NAME`, `QUEUE_MISSING`, `INVALID_SETTING`, `UNSAFE_PATH`, `IO`
   */
  async readSettingsFile(queue?: string): Promise<SettingsLayer> {
    if (queue !== undefined) checkQueueFolders(this.root, checkQueueName(queue));
    return this.#settings.layer(queue ?? '', true);
  }

  /**
   * Changes settings in the root's or a queue's ddmq.yaml, written atomically. A value of
   * null removes the key, so that the layer above applies again.
   * @param queue - the queue; undefined: the root
   * @param changes - setting names (snake_case, as in the file) and their new values
   * @returns what the file now sets
   * @throws {@link DdmqError} `INVALID_SETTING` (an unknown key, a value of the wrong type),
   *   `INVALID_NAME`, `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   */
  async setSettings(queue: string | undefined, changes: Record<string, unknown>): Promise<SettingsLayer> {
    const key = queue === undefined ? '' : checkQueueName(queue);
    if (key !== '') checkQueueFolders(this.root, key);
    return this.#settings.set(key, changes);
  }

  // ---- queues -----------------------------------------------------------------------

  /**
   * The names of the queues in the root (real folders with a ddmq.yaml), sorted.
   * @returns the names; queues that are not usable (see {@link Broker.queueProblems}) are left out
   * @throws {@link DdmqError} `ROOT_MISSING`, `IO`
   */
  async listQueues(): Promise<string[]> {
    return this.#folders.entries().filter((e) => e.problem === undefined).map((e) => e.name);
  }

  /**
   * The queues of the root (or the named ones), each with the problem that makes it
   * unusable, if any: a link in its place or in one of its folders, a missing queue.
   * @param names - the queues to look at; none: every queue of the root
   * @returns one entry per queue, in order; `problem` is set on those that are unusable
   * @throws {@link DdmqError} `ROOT_MISSING`, `INVALID_NAME`, `IO`
   */
  async queueProblems(names?: string[]): Promise<QueueEntry[]> {
    return names === undefined ? this.#folders.entries() : this.#folders.problems(names);
  }

  /**
   * Whether a queue exists (a real folder with a ddmq.yaml).
   * @param name - the queue
   * @throws {@link DdmqError} `INVALID_NAME`, `IO`
   */
  async queueExists(name: string): Promise<boolean> {
    return this.#folders.state(checkQueueName(name)) === 'queue';
  }

  /**
   * Creates a queue. Its ddmq.yaml holds only the given settings that differ from the
   * root's, so that later changes to the root reach it.
   * @param name - the queue
   * @param settings - its own settings (see the README's settings table)
   * @returns true if it was made; false if it existed (its settings are then left alone)
   * @throws {@link DdmqError} `INVALID_NAME`, `INVALID_SETTING`, `ROOT_MISSING`, `UNSAFE_PATH`, `IO`
   */
  createQueue(name: string, settings: Partial<Settings> = {}): Promise<boolean> {
    return this.#folders.create(name, settings);
  }

  /**
   * Deletes a queue and all its messages. Nothing is deleted if it holds files ddmq did
   * not write, or if a link stands in place of its folders.
   * @param name - the queue
   * @throws {@link DdmqError} `FOREIGN_FILES`, `UNSAFE_PATH`, `QUEUE_MISSING`, `INVALID_NAME`, `IO`
   */
  deleteQueue(name: string): Promise<void> {
    return this.#folders.delete(name, () => {
      this.#queues.get(name)?.close();
      this.#queues.delete(name);
      this.#settings.forget(name);
    });
  }

  async #queue(name: string): Promise<Queue> {
    checkQueueName(name);
    let q = this.#queues.get(name);
    if (q) return q;
    try {
      await this.#settings.layer(name);
    } catch (err) {
      if (!this.#config.create || !isDdmqError(err, 'QUEUE_MISSING')) throw err;
      await this.createQueue(name);
      await this.#settings.layer(name);
    }
    q = new Queue(this.#context, name);
    // Its folders must be real folders: a planted link must not lead out of the tree.
    q.checkFolders();
    this.#queues.set(name, q);
    this.#probeIn(name);
    return q;
  }

  /** Tells the server clock where to probe: a queue's folder, opened without following links (measured at first need). */
  #probeIn(name: string): void {
    this.#serverClock?.use((probe) => inQueueFolder(this.root, name, (at) => probe(at), null));
  }

  /**
   * Which clock this broker takes times on: the file server's (with this host's skew
   * from it, the uncertainty, and the resolution of its stamps), this host's as a fallback
   * (and why), not measured yet (no queue used so far), or off (`serverClock: false`, or
   * a `now` given). See "Clocks" in the README.
   * @param queue - measure it now, in this queue's folder, if it never was (and the queue exists)
   * @returns where the clock stands
   * @throws {@link DdmqError} `INVALID_NAME`
   */
  clock(queue?: string): ClockState {
    if (this.#serverClock === null) return { kind: 'off' };
    if (queue !== undefined && this.#serverClock.state().kind === 'unmeasured' && this.#folders.state(checkQueueName(queue)) === 'queue') {
      this.#probeIn(queue);
      this.#serverClock.measureIfDue();
    }
    return this.#serverClock.state();
  }

  // ---- messages ---------------------------------------------------------------------

  /**
   * Publishes a message. It is written to a temporary file and renamed into the queue, so
   * a consumer never sees half of it.
   * @typeParam T - the payload's type
   * @param queue - the queue (made if missing, when the broker was opened with `create`)
   * @param body - the payload: a string, or any JSON value (undefined is written as "")
   * @param options - priority, lease (seconds), requeue policy, extra keys, delay (seconds)
   * @returns the message as written; `filename` is its ready name
   * @throws {@link DdmqError} `INVALID_ARGUMENT` (an option out of range, a body that is not
   *   JSON), `INVALID_NAME`, `QUEUE_MISSING`, `INVALID_SETTING`, `UNSAFE_PATH`, `IO`
   * @example
   * ```ts
   * await broker.publish('tasks', { file: 'a.txt' }, { priority: 1, lease: 3600, requeueLimit: 3 });
   * ```
   */
  publish<T>(queue: string, body: T, options?: PublishOptions): Promise<Message<T>> {
    return this.#withQueue(queue, (q) => q.publish(body, options) as Promise<Message<T>>);
  }

  /**
   * Publishes many messages with the same options, in order, much cheaper per message than
   * publish (with fsync, 512 at a time share their syncs).
   * @param queue - the queue
   * @param bodies - the payloads
   * @param options - as for publish, for every message
   * @returns how many were published
   * @throws {@link DdmqError} as {@link Broker.publish}; the messages before the failing one stay published
   */
  publishMany(queue: string, bodies: Iterable<unknown>, options?: PublishOptions): Promise<number> {
    return this.#withQueue(queue, (q) => q.publishMany(bodies, options));
  }

  /**
   * Takes up to `n` ready messages, in order (priority, then publication), into work/.
   * Each is leased: if it is not acked, nacked, released or extended within its lease
   * (seconds), a clean makes it ready again.
   * @typeParam T - the payloads' type: a promise of the caller's, not checked at run time
   * @param queue - the queue
   * @param options - how many, how long to wait (seconds), the lease (seconds)
   * @returns the messages taken, in flight; [] if there are none (after `wait`, if given)
   * @throws {@link DdmqError} `INVALID_ARGUMENT` (an option out of range), `INVALID_NAME`,
   *   `QUEUE_MISSING`, `INVALID_SETTING`, `UNSAFE_PATH`, `IO`
   * @example
   * ```ts
   * interface Task { file: string }
   * for (const msg of await broker.consume<Task>('tasks', { n: 10, wait: 30, lease: 600 })) {
   *   await convert(msg.message.file);
   *   await broker.ack(msg);
   * }
   * ```
   */
  consume<T = unknown>(queue: string, options?: ConsumeOptions): Promise<Message<T>[]> {
    return this.#withQueue(queue, (q) => q.consume(options) as Promise<Message<T>[]>);
  }

  /**
   * Runs fn on the queue, with no extra promise when the queue is known already (publish
   * and consume pass here for every message). With `create`, a queue deleted under us is
   * made again, once.
   */
  #withQueue<T>(name: string, fn: (q: Queue) => Promise<T>): Promise<T> {
    const known = this.#queues.get(name);
    const run = known !== undefined ? fn(known) : this.#queue(name).then(fn);
    if (!this.#config.create) return run;
    return run.catch((err: unknown) => {
      if (!isDdmqError(err, 'QUEUE_MISSING')) throw err;
      this.#queues.delete(name);
      this.#settings.forget(name);
      return this.#queue(name).then(fn);
    });
  }

  /**
   * Moves dead letters back to the queue each came from, or to `to`, as new ready
   * messages with their requeue counter reset.
   * @param deadQueue - the dead-letter queue
   * @param options - where to, which ids, how many
   * @returns how many moved, how many had nowhere to go, and the ids asked for that were not there
   * @throws {@link DdmqError} `QUEUE_MISSING`, `INVALID_NAME`, `INVALID_ARGUMENT`, `UNSAFE_PATH`, `IO`
   */
  redrive(deadQueue: string, options?: RedriveOptions): Promise<RedriveResult> {
    return this.#deadLetters.redrive(deadQueue, options);
  }

  /**
   * Stops watching folders for waiting consumers, and writes the task records it holds.
   * The broker stays usable: a later call opens what it needs again.
   */
  close(): void {
    for (const q of this.#queues.values()) q.close();
    this.#history.flush();
  }

  // ---- task records -----------------------------------------------------------------

  /**
   * The workers running on this root now, from their presence files (ROOT/.ddmq/workers),
   * with how long ago each last said so (`age_ms`, by this host's clock) and whether that
   * is recent enough to take it as alive (`active`: within PRESENCE_ACTIVE_MS). Workers of
   * queues with `history: false` keep no presence file.
   * @returns one entry per presence file
   * @throws {@link DdmqError} `IO`
   */
  async workers(): Promise<WorkerInfo[]> {
    return this.#history.workers();
  }

  /**
   * The task records of one queue, of a list of queues, or of every queue that has any
   * (deleted queues included), ending at or after `since` (epoch ms). In file order, not
   * sorted; a half-written last line is skipped. This process's own buffered records are
   * written first, so they are included.
   * @param queue - a queue, a list of queues; none: every queue with records
   * @param options - `since` (epoch ms)
   * @returns the records, as an async iterator
   * @throws {@link DdmqError} `INVALID_NAME`, `IO` (while iterating)
   */
  records(queue?: string | string[], options: RecordsOptions = {}): AsyncGenerator<TaskRecord, void, undefined> {
    return this.#history.records(queue, options);
  }

  /**
   * Follows the task records as they are written, for a live view: each `poll(queues)`
   * returns the records of those queues written since the last poll (the first: every
   * kept one), reading only what was appended (see RecordTail).
   * @returns a tail to poll
   */
  followRecords(): RecordTail {
    return this.#history.follow();
  }

  /**
   * What the farm did: per queue (and in total), counts by outcome over every kept record
   * and over the window since `since` (epoch ms; default an hour ago), throughput per
   * minute, runtime percentiles, the done rate and ETA, workers per host, the most common
   * errors, and the current counts. Every queue (also those that only have records left),
   * or the named ones. A queue that cannot be counted (a link in its place, a bad
   * ddmq.yaml) is in `problems`; its current counts are null.
   * @param queues - a queue, a list of queues; none: every queue
   * @param options - `since` (epoch ms)
   * @returns the stats per queue and in total, and the queues that could not be counted
   * @throws {@link DdmqError} `ROOT_MISSING`, `INVALID_NAME`, `IO`
   */
  stats(queues?: string | string[], options: StatsOptions = {}): Promise<StatsResult> {
    return this.#history.stats(queues, options, (wanted) => this.counts(wanted));
  }

  /**
   * Takes the next ready message, as consume with `n: 1`.
   * @typeParam T - the payload's type: a promise of the caller's, not checked at run time
   * @param queue - the queue
   * @param options - as for consume, but no `n`
   * @returns the message, in flight; null if there is none
   * @throws {@link DdmqError} as {@link Broker.consume}
   */
  async consumeOne<T = unknown>(queue: string, options?: ConsumeOneOptions): Promise<Message<T> | null> {
    return (await this.consume<T>(queue, { ...options, n: 1 }))[0] ?? null;
  }

  /**
   * Acknowledges a consumed message: it is done, and its file is deleted.
   * @param msg - the message, as consume returned it
   * @param details - how the task ended (exit code, signal), for its task record
   * @throws {@link DdmqError} `NOT_IN_FLIGHT` (its lease ran out and it was requeued or
   *   taken, or it was acked already), `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   * @example
   * ```ts
   * const [msg] = await broker.consume('tasks');
   * if (msg) {
   *   await run(msg.message);
   *   await broker.ack(msg);
   * }
   * ```
   */
  ack(msg: Message, details?: RecordDetails): Promise<void>;
  /**
   * Acknowledges a consumed message by its queue and in-flight file name (as `ddmq ack` does).
   * @param queue - its queue
   * @param filename - its in-flight file name (`msg.filename` once consumed)
   * @param details - how the task ended (exit code, signal), for its task record
   * @throws {@link DdmqError} `NOT_IN_FLIGHT`, `INVALID_NAME` (not an in-flight file name),
   *   `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   */
  ack(queue: string, filename: string, details?: RecordDetails): Promise<void>;
  async ack(target: Message | string, filenameOrDetails?: string | RecordDetails, details?: RecordDetails): Promise<void> {
    const filename = typeof filenameOrDetails === 'string' ? filenameOrDetails : undefined;
    const rec = (typeof filenameOrDetails === 'object' ? filenameOrDetails : details) ?? {};
    const [queue, name] = messageTarget(target, filename);
    (this.#queues.get(queue) ?? (await this.#queue(queue))).ack(name, rec);
  }

  /**
   * Negatively acknowledges a consumed message: its task failed. By the queue's settings
   * and the message's limit, it is requeued after the retry backoff (`due` in the
   * result), or moved to the dead_letter queue, or dropped.
   * @param msg - the message, as consume returned it
   * @param options - force a requeue or a drop; the error, kept as `last_error`
   * @returns what became of it
   * @throws {@link DdmqError} `NOT_IN_FLIGHT`, `INVALID_ARGUMENT`, `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   * @example
   * ```ts
   * try {
   *   await run(msg.message);
   *   await broker.ack(msg);
   * } catch (err) {
   *   const { action, due } = await broker.nack(msg, { error: String(err) });
   * }
   * ```
   */
  nack(msg: Message, options?: NackOptions): Promise<NackResult>;
  /**
   * Negatively acknowledges a consumed message by its queue and in-flight file name.
   * @param queue - its queue
   * @param filename - its in-flight file name
   * @param options - force a requeue or a drop; the error, kept as `last_error`
   * @returns what became of it
   * @throws {@link DdmqError} `NOT_IN_FLIGHT`, `INVALID_NAME`, `CORRUPT_MESSAGE` (the file
   *   cannot be read), `INVALID_ARGUMENT`, `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   */
  nack(queue: string, filename: string, options?: NackOptions): Promise<NackResult>;
  async nack(target: Message | string, filenameOrOptions?: string | NackOptions, options?: NackOptions): Promise<NackResult> {
    const filename = typeof filenameOrOptions === 'string' ? filenameOrOptions : undefined;
    const opts = typeof filenameOrOptions === 'object' ? filenameOrOptions : options;
    const [queue, name] = messageTarget(target, filename);
    return (await this.#queue(queue)).nack(name, opts, {});
  }

  /**
   * Gives a consumed message back untried: it is ready again at once, its requeue counter
   * unchanged, whatever its requeue settings say (for a consumer that stops).
   * @param msg - the message, as consume returned it
   * @param details - how the task ended (exit code, signal), for its task record
   * @returns its new ready file name
   * @throws {@link DdmqError} `NOT_IN_FLIGHT`, `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   */
  release(msg: Message, details?: RecordDetails): Promise<ReleaseResult>;
  /**
   * Gives a consumed message back untried, by its queue and in-flight file name.
   * @param queue - its queue
   * @param filename - its in-flight file name
   * @param details - how the task ended (exit code, signal), for its task record
   * @returns its new ready file name
   * @throws {@link DdmqError} `NOT_IN_FLIGHT`, `INVALID_NAME`, `CORRUPT_MESSAGE`, `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   */
  release(queue: string, filename: string, details?: RecordDetails): Promise<ReleaseResult>;
  async release(target: Message | string, filenameOrDetails?: string | RecordDetails, details?: RecordDetails): Promise<ReleaseResult> {
    const filename = typeof filenameOrDetails === 'string' ? filenameOrDetails : undefined;
    const rec = (typeof filenameOrDetails === 'object' ? filenameOrDetails : details) ?? {};
    const [queue, name] = messageTarget(target, filename);
    return (await this.#queue(queue)).release(name, rec);
  }

  /**
   * Renews a message's lease to `seconds` from now: its in-flight file is renamed to the
   * new expiry, and `msg.filename` updated. A long task extends its message before the
   * lease runs out (`work()` does it by itself; see LeaseRenewer for your own loops).
   * @param msg - the message, as consume returned it
   * @param seconds - the new lease, in whole seconds from now (1 to ten years)
   * @returns the new in-flight file name
   * @throws {@link DdmqError} `NOT_IN_FLIGHT` (the lease ran out already and the message was
   *   requeued or taken), `INVALID_ARGUMENT` (seconds out of range), `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   * @example
   * ```ts
   * const [msg] = await broker.consume('tasks', { lease: 60 });
   * const renew = setInterval(() => broker.extend(msg!, 60), 20_000);
   * ```
   */
  extend(msg: Message, seconds: number): Promise<string>;
  /**
   * Renews a message's lease to `seconds` from now, by its queue and in-flight file name.
   * @param queue - its queue
   * @param filename - its in-flight file name
   * @param seconds - the new lease, in whole seconds from now (1 to ten years)
   * @returns the new in-flight file name
   * @throws {@link DdmqError} `NOT_IN_FLIGHT`, `INVALID_ARGUMENT`, `INVALID_NAME`, `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   */
  extend(queue: string, filename: string, seconds: number): Promise<string>;
  async extend(target: Message | string, filenameOrSeconds: string | number, seconds?: number): Promise<string> {
    if (typeof target === 'string') {
      return (await this.#queue(target)).extend(String(filenameOrSeconds), seconds ?? NaN);
    }
    return (await this.#queue(target.queue)).extend(target, Number(filenameOrSeconds));
  }

  /**
   * Whether a consumed message is still in flight under its file name (its lease was not
   * lost, it was not acked).
   * @param msg - the message, as consume returned it
   * @throws {@link DdmqError} `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   */
  async isInFlight(msg: Message): Promise<boolean> {
    return (await this.#queue(msg.queue)).isInFlight(msg.filename);
  }

  /**
   * Deletes one message, ready, delayed or in flight, by its file name.
   * @param queue - its queue
   * @param filename - its file name
   * @returns the path of the file deleted
   * @throws {@link DdmqError} `MESSAGE_NOT_FOUND`, `INVALID_NAME`, `QUEUE_MISSING`, `UNSAFE_PATH`, `IO`
   */
  async deleteMessage(queue: string, filename: string): Promise<string> {
    return (await this.#queue(queue)).deleteMessage(filename);
  }

  /**
   * Deletes every message of a queue, ready, delayed and in flight.
   * @param queue - the queue
   * @returns how many of each state were deleted
   * @throws {@link DdmqError} `QUEUE_MISSING`, `INVALID_NAME`, `UNSAFE_PATH`, `IO`
   */
  async purge(queue: string): Promise<PurgeResult> {
    return (await this.#queue(queue)).purge();
  }

  /**
   * Requeues expired messages of one queue, of a list of queues, or of every queue. Over a
   * list or every queue, one that cannot be cleaned (missing, a bad ddmq.yaml, a link in
   * its place, a failing disk) does not stop the others: its result carries the `error`,
   * with zero counts. One queue named alone throws its error. Over every queue, the task
   * records of queues that no longer exist are pruned too (by the root's settings), and
   * their folders removed once empty.
   * @param queue - a queue, a list of queues; none: every queue
   * @param options - whether and which temporary files to remove
   * @returns one result per queue
   * @throws {@link DdmqError} for one queue named alone: `QUEUE_MISSING`, `INVALID_NAME`,
   *   `INVALID_SETTING`, `UNSAFE_PATH`, `IO`; over several: `ROOT_MISSING`, `INVALID_NAME`
   */
  async clean(queue?: string | string[], options?: CleanOptions): Promise<CleanResult[]> {
    if (typeof queue === 'string') return [await (await this.#queue(queue)).clean(options)];
    if (queue === undefined) this.#history.prunePresence();
    const results = await this.#eachQueue(
      queue,
      (q) => q.clean(options),
      (name, error) => ({ queue: name, requeued: 0, dropped: 0, deadLettered: 0, corrupt: 0, tempsRemoved: 0, error }),
    );
    // A name where a queue would be that is not usable as one (a link) is left alone: clean reports it.
    if (queue === undefined) {
      await this.#history.pruneDeletedQueues((name) => {
        try {
          return this.#folders.state(name) === 'none';
        } catch (err) {
          if (isDdmqError(err)) return false;
          throw err;
        }
      });
    }
    return results;
  }

  /**
   * Runs fn on the named queues (each name checked first), or on every queue; a queue that
   * fails gets `failed(name, error)` in its place.
   */
  async #eachQueue<T>(names: string[] | undefined, fn: (q: Queue) => T | Promise<T>, failed: (name: string, error: DdmqError) => T): Promise<T[]> {
    const entries: { name: string; problem?: DdmqError }[] = names === undefined ? this.#folders.entries() : names.map((name) => ({ name: checkQueueName(name) }));
    const out: T[] = [];
    for (const entry of entries) {
      if (entry.problem) {
        out.push(failed(entry.name, entry.problem));
        continue;
      }
      try {
        out.push(await fn(await this.#queue(entry.name)));
      } catch (err) {
        if (!isDdmqError(err) || err.code === 'ROOT_MISSING' || err.code === 'ROOT_UNINITIALISED') throw err;
        out.push(failed(entry.name, err));
      }
    }
    return out;
  }

  /**
   * Lists a queue's messages without taking them: ready ones in the order consume would
   * take them, then in-flight and delayed ones.
   * @typeParam T - the payloads' type: a promise of the caller's, not checked at run time
   * @param queue - the queue
   * @param options - which states, how many, a text to match
   * @returns the messages (an unreadable file has `message` null and an `error`)
   * @throws {@link DdmqError} `QUEUE_MISSING`, `INVALID_NAME`, `INVALID_ARGUMENT`, `UNSAFE_PATH`, `IO`
   */
  async peek<T = unknown>(queue: string, options?: PeekOptions): Promise<Peeked<T>[]> {
    return (await this.#queue(queue)).peek(options) as Peeked<T>[];
  }

  /**
   * Ready, delayed, in-flight, expired and corrupt counts of one queue, of a list of
   * queues, or of every queue. Over a list or every queue, one that cannot be read does
   * not stop the others: its result carries the `error`, with zero counts.
   * @param queue - a queue, a list of queues; none: every queue
   * @returns one result per queue
   * @throws {@link DdmqError} for one queue named alone: `QUEUE_MISSING`, `INVALID_NAME`,
   *   `UNSAFE_PATH`, `IO`; over several: `ROOT_MISSING`, `INVALID_NAME`
   */
  async counts(queue?: string | string[]): Promise<QueueCounts[]> {
    if (typeof queue === 'string') return [await (await this.#queue(queue)).counts()];
    return this.#eachQueue(
      queue,
      (q) => q.counts(),
      (name, error) => ({ queue: name, ready: 0, delayed: 0, inFlight: 0, expired: 0, corrupt: 0, nextDue: null, error }),
    );
  }
}

function messageTarget(target: Message | string, filename: string | undefined): [string, string | Message] {
  if (typeof target === 'string') {
    if (filename === undefined) throw new DdmqError('INVALID_ARGUMENT', 'a message file name is needed with a queue name');
    return [target, filename];
  }
  return [target.queue, target];
}
