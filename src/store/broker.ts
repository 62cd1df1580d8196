/**
 * One root folder of queues. Opening it checks that it is initialised (ROOT/ddmq.yaml);
 * with `create` it is made, and so are missing queues that are published to or consumed
 * from. The Broker is a façade: the settings cache (settings-cache.ts), the queue folders
 * (root-queues.ts), dead letters (dead-letters.ts) and the task records and presence files
 * (history.ts) do the work, and each Queue gets only the narrow pieces of host.ts.
 */
import { DdmqError, isDdmqError } from '../format/errors.js';
import type { Message } from '../format/message.js';
import { checkQueueName } from '../format/names.js';
import type { RecordDetails, TaskRecord } from '../format/records.js';
import type { Settings, SettingsLayer } from '../format/settings.js';
import type { Stats } from '../format/stats.js';
import type { WorkerPresence } from '../format/presence.js';
import { DeadLetters, type RedriveOptions, type RedriveResult } from './dead-letters.js';
import { startThreadPool } from './durable.js';
import { checkQueueFolders } from './folders.js';
import { History } from './history.js';
import { type BrokerOptions, type Clock, type QueueContext, reporter, type Reporter, type StoreConfig, storeConfig } from './host.js';
import { registerInternals } from './internals.js';
import type { RecordTail } from './record-reader.js';
import { prepareRoot, RootQueues } from './root-queues.js';
import { SettingsCache } from './settings-cache.js';
import {
  type CleanOptions,
  type CleanResult,
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

export class Broker {
  readonly root: string;
  readonly #config: StoreConfig;
  readonly #clock: Clock;
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
    const now = options.now ?? Date.now;
    this.#config = config;
    this.#clock = { now: () => now() };
    this.#report = reporter(options.onWarning, options.log);
    this.#settings = new SettingsCache(root, options.settingsTtl ?? 2000, config.fsync, this.#clock);
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

  /** Opens the root; ROOT_MISSING or ROOT_UNINITIALISED unless `create` is set. */
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
   * environment). Nothing happens if UV_THREADPOOL_SIZE is set. Returns whether it set
   * the size; the pool started earlier if the program made such a call before.
   */
  async startSyncThreads(queue: string): Promise<boolean> {
    const fsync = this.#config.fsync ?? (await this.settings(queue)).fsync;
    return fsync && startThreadPool();
  }

  // ---- settings ---------------------------------------------------------------------

  /** The settings in force for a queue (defaults < root < queue), or for the root. */
  settings(queue?: string): Promise<Settings> {
    return this.#settings.settings(queue);
  }

  /** What one settings file says, read now: the root's, or a queue's. */
  async readSettingsFile(queue?: string): Promise<SettingsLayer> {
    if (queue !== undefined) checkQueueFolders(this.root, checkQueueName(queue));
    return this.#settings.layer(queue ?? '', true);
  }

  /**
   * Changes settings in the root's or a queue's ddmq.yaml, written atomically. A value of
   * null removes the key, so that the layer above applies again. Returns the new file.
   */
  async setSettings(queue: string | undefined, changes: Record<string, unknown>): Promise<SettingsLayer> {
    const key = queue === undefined ? '' : checkQueueName(queue);
    if (key !== '') checkQueueFolders(this.root, key);
    return this.#settings.set(key, changes);
  }

  // ---- queues -----------------------------------------------------------------------

  /** The names of the queues in the root (real folders with a ddmq.yaml), sorted. */
  async listQueues(): Promise<string[]> {
    return this.#folders.entries().filter((e) => e.problem === undefined).map((e) => e.name);
  }

  /**
   * The queues of the root (or the named ones), each with the problem that makes it
   * unusable, if any: a link in its place or in one of its folders, a missing queue.
   */
  async queueProblems(names?: string[]): Promise<{ name: string; problem?: DdmqError }[]> {
    return names === undefined ? this.#folders.entries() : this.#folders.problems(names);
  }

  async queueExists(name: string): Promise<boolean> {
    return this.#folders.state(checkQueueName(name)) === 'queue';
  }

  /** Creates a queue; false if it existed (see RootQueues.create). */
  createQueue(name: string, settings: Partial<Settings> = {}): Promise<boolean> {
    return this.#folders.create(name, settings);
  }

  /** Deletes a queue and all its messages; refuses if it holds files ddmq did not write (see RootQueues.delete). */
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
    return q;
  }

  // ---- messages ---------------------------------------------------------------------

  /** Publishes a message (a string or any JSON value) and returns it as written. */
  publish(queue: string, body: unknown, options?: PublishOptions): Promise<Message> {
    return this.#withQueue(queue, (q) => q.publish(body, options));
  }

  /** Publishes many messages in order, much cheaper per message than publish; returns how many. */
  publishMany(queue: string, bodies: Iterable<unknown>, options?: PublishOptions): Promise<number> {
    return this.#withQueue(queue, (q) => q.publishMany(bodies, options));
  }

  /** Takes up to `n` ready messages in order into work/; [] if there are none. */
  consume(queue: string, options?: ConsumeOptions): Promise<Message[]> {
    return this.#withQueue(queue, (q) => q.consume(options));
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

  /** Moves dead letters back to where they came from, or to `to` (see DeadLetters.redrive). */
  redrive(deadQueue: string, options?: RedriveOptions): Promise<RedriveResult> {
    return this.#deadLetters.redrive(deadQueue, options);
  }

  /** Stops watching folders for waiting consumers, and writes the task records it holds. The broker stays usable. */
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
   */
  async workers(): Promise<(WorkerPresence & { age_ms: number; active: boolean })[]> {
    return this.#history.workers();
  }

  /**
   * The task records of one queue, of a list of queues, or of every queue that has any
   * (deleted queues included), ending at or after `since` (epoch ms). In file order, not
   * sorted; a half-written last line is skipped. This process's own buffered records are
   * written first, so they are included.
   */
  records(queue?: string | string[], options: { since?: number } = {}): AsyncGenerator<TaskRecord, void, undefined> {
    return this.#history.records(queue, options);
  }

  /**
   * Follows the task records as they are written, for a live view: each `poll(queues)`
   * returns the records of those queues written since the last poll (the first: every
   * kept one), reading only what was appended (see RecordTail).
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
   */
  stats(queues?: string | string[], options: { since?: number } = {}): Promise<Stats & { problems: DdmqError[] }> {
    return this.#history.stats(queues, options, (wanted) => this.counts(wanted));
  }

  /** Takes the next ready message; null if there is none. */
  async consumeOne(queue: string, options?: Omit<ConsumeOptions, 'n'>): Promise<Message | null> {
    return (await this.consume(queue, { ...options, n: 1 }))[0] ?? null;
  }

  /**
   * Acknowledges a consumed message (deletes it): `ack(msg, details?)` or `ack(queue,
   * filename, details?)`. `details` (exit code, signal) go to its task record.
   */
  async ack(target: Message | string, filenameOrDetails?: string | RecordDetails, details?: RecordDetails): Promise<void> {
    const filename = typeof filenameOrDetails === 'string' ? filenameOrDetails : undefined;
    const rec = (typeof filenameOrDetails === 'object' ? filenameOrDetails : details) ?? {};
    const [queue, name] = messageTarget(target, filename);
    (this.#queues.get(queue) ?? (await this.#queue(queue))).ack(name, rec);
  }

  /** Negatively acknowledges: `nack(msg, options?)` or `nack(queue, filename, options?)`. */
  async nack(target: Message | string, filenameOrOptions?: string | NackOptions, options?: NackOptions): Promise<NackResult> {
    const filename = typeof filenameOrOptions === 'string' ? filenameOrOptions : undefined;
    const opts = typeof filenameOrOptions === 'object' ? filenameOrOptions : options;
    const [queue, name] = messageTarget(target, filename);
    return (await this.#queue(queue)).nack(name, opts, {});
  }

  /**
   * Gives a message back untried: `release(msg)` or `release(queue, filename)`. It is ready
   * again at once, its requeue counter unchanged, whatever its requeue settings say.
   */
  async release(target: Message | string, filenameOrDetails?: string | RecordDetails, details?: RecordDetails): Promise<NackResult> {
    const filename = typeof filenameOrDetails === 'string' ? filenameOrDetails : undefined;
    const rec = (typeof filenameOrDetails === 'object' ? filenameOrDetails : details) ?? {};
    const [queue, name] = messageTarget(target, filename);
    return (await this.#queue(queue)).release(name, rec);
  }

  /**
   * Renews a lease to `seconds` from now: `extend(msg, seconds)` (msg.filename is updated)
   * or `extend(queue, filename, seconds)`. Returns the new in-flight file name.
   */
  async extend(target: Message | string, filenameOrSeconds: string | number, seconds?: number): Promise<string> {
    if (typeof target === 'string') {
      return (await this.#queue(target)).extend(String(filenameOrSeconds), seconds ?? NaN);
    }
    return (await this.#queue(target.queue)).extend(target, Number(filenameOrSeconds));
  }

  /** Whether a consumed message is still in flight under its file name (its lease was not lost, it was not acked). */
  async isInFlight(msg: Message): Promise<boolean> {
    return (await this.#queue(msg.queue)).isInFlight(msg.filename);
  }

  /** Deletes one message, ready or in flight, by file name; returns its path. */
  async deleteMessage(queue: string, filename: string): Promise<string> {
    return (await this.#queue(queue)).deleteMessage(filename);
  }

  /** Deletes every message of a queue, ready, delayed and in flight. */
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

  /** Lists a queue's messages without taking them (see Queue.peek). */
  async peek(queue: string, options?: PeekOptions): Promise<Peeked[]> {
    return (await this.#queue(queue)).peek(options);
  }

  /**
   * Ready, delayed, in-flight, expired and corrupt counts of one queue, of a list of
   * queues, or of every queue. Over a list or every queue, one that cannot be read does
   * not stop the others: its result carries the `error`, with zero counts.
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
