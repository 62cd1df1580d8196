/**
 * One queue: a folder of ready messages, `work/` of messages in flight, `delayed/` of
 * messages not due yet, and `corrupt/` where unreadable message files are moved aside for
 * a person to look at. The Queue composes its parts, each in its own module:
 *
 * - queue-dirs.ts: the folders as the per-message calls reach them (plain or pinned);
 * - cursor.ts: the cached listing consume claims from;
 * - writer.ts: publishing and every other write of a message file;
 * - claims.ts: taking files by rename, reading what was taken;
 * - requeue.ts, settle.ts: ack, nack, release, extend, dead letters;
 * - clean.ts: expiry and housekeeping; inspect.ts: peek, counts, purge, delete.
 */
import type { Message } from '../format/message.js';
import type { Outcome, RecordAction, RecordDetails } from '../format/records.js';
import type { Settings } from '../format/settings.js';
import { Claimer } from './claims.js';
import { type CleanOptions, type CleanResult, Cleaner } from './clean.js';
import { ClaimCursor } from './cursor.js';
import type { QueueFolders, QueuePaths } from './folders.js';
import type { QueueContext, StoreConfig } from './host.js';
import { Inspector, type Peeked, type PeekOptions, type PurgeResult, type QueueCounts } from './inspect.js';
import { QueueDirs } from './queue-dirs.js';
import { invalid } from './queue-errors.js';
import { QueueSettings } from './queue-settings.js';
import { type NackResult, Requeuer } from './requeue.js';
import { type NackOptions, Settler } from './settle.js';
import { FolderWatcher } from './watch.js';
import { MessageWriter, type PublishOptions } from './writer.js';
import { MAX_SECONDS } from '../format/settings.js';

export type { CleanOptions, CleanResult } from './clean.js';
export type { MessageState, Peeked, PeekOptions, PurgeResult, QueueCounts } from './inspect.js';
export type { NackResult, ReleaseResult } from './requeue.js';
export type { NackOptions } from './settle.js';
export type { PublishOptions } from './writer.js';

/** Options of `Broker.consume`. */
export interface ConsumeOptions {
  /**
   * How many messages to take at most.
   * @default 1
   */
  n?: number;
  /**
   * Seconds to wait for a message when there is none (0: return [] at once).
   * Waiting uses change notification where the file system gives it and polling with
   * backoff (up to the broker's `pollIntervalMs`, ±20 % at random) where it does not; an
   * idle poll costs one lstat of the queue folder.
   * @default 0
   */
  wait?: number;
  /**
   * Ends a wait early: consume then returns what it has ([]).
   * @default none
   */
  signal?: AbortSignal;
  /**
   * Lease in seconds for these messages, over the message's own and the queue's: how long
   * this consumer may hold them before they are requeued.
   * @default the message's own lease, else the queue's `message_timeout` setting
   */
  lease?: number;
  /**
   * Do not clean expired messages first (consume otherwise does, at most every
   * `cleanIntervalMs`).
   * @default false
   */
  skipCleaning?: boolean;
}

/** Options of `Broker.consumeOne`: those of consume, but one message. */
export type ConsumeOneOptions = Omit<ConsumeOptions, 'n'>;

/**
 * One queue of a broker's root, as the Broker works on it (see the top of this file).
 * Made by the broker (`brokerInternals(broker).queue(name)`); programs use the Broker.
 */
export class Queue {
  /** The queue's name. */
  readonly name: string;
  /** The queue's folders: the only way to them (see folders.ts). */
  readonly folders: QueueFolders;
  /** The queue's folder (plain path). */
  readonly dir: string;
  /** Its in-flight folder. */
  readonly workDir: string;
  /** Its folder of files moved aside. */
  readonly corruptDir: string;
  /** Its folder of messages not due yet. */
  readonly delayedDir: string;
  private readonly queueSettings: QueueSettings;
  private readonly dirs: QueueDirs;
  private readonly cursor: ClaimCursor;
  private readonly writer: MessageWriter;
  private readonly claimer: Claimer;
  private readonly settler: Settler;
  private readonly cleaner: Cleaner;
  private readonly inspector: Inspector;
  private folderWatcher: FolderWatcher | undefined;
  /** When the last wait that found nothing ended (timers' clock): a wait begun soon after it goes on polling. */
  private lastEmptyWait = -Infinity;
  /** The broker's store options, for the watcher made on first use. */
  private readonly config: StoreConfig;

  /**
   * @param host - what the queue needs of its broker
   * @param name - the queue (checked by the caller)
   */
  constructor(host: QueueContext, name: string) {
    const { config, clock, report } = host;
    this.config = config;
    this.name = name;
    this.queueSettings = new QueueSettings(host.settings, name);
    this.dirs = new QueueDirs(config.root, name, config.pinFolders, clock, this.queueSettings);
    this.folders = this.dirs.folders;
    const plain: QueuePaths = this.folders.paths;
    this.dir = plain.dir;
    this.workDir = plain.work;
    this.corruptDir = plain.corrupt;
    this.delayedDir = plain.delayed;
    this.cursor = new ClaimCursor(name, this.dirs, clock, report, config.listingIntervalMs, config.listingStalenessMs);
    this.writer = new MessageWriter(name, this.dirs, this.cursor, this.queueSettings, config.fsync, clock, report);
    this.claimer = new Claimer(name, this.dirs, this.cursor, this.queueSettings, clock, report);
    const requeuer = new Requeuer(name, config.root, this.dirs, this.writer, host.deadLetters, clock, report);
    this.settler = new Settler(name, this.dirs, this.claimer, requeuer, this.queueSettings, host.records, clock, report);
    this.cleaner = new Cleaner(name, this.dirs, this.cursor, this.claimer, requeuer, this.settler, this.queueSettings, host.records, clock, report, config.cleanIntervalMs);
    this.inspector = new Inspector(name, this.dirs, this.cursor, this.queueSettings, clock, report);
  }

  /** The folders this process uses now (pinned or plain): for tests and diagnostics. */
  get pinned(): boolean {
    return this.dirs.pinned;
  }

  /** Claims this queue object lost to other clients (a measure of contention). */
  get lostClaims(): number {
    return this.cursor.lostClaims;
  }

  /** Listings of the ready folder this queue object made to claim from. */
  get listings(): number {
    return this.cursor.listings;
  }

  /** Checks the queue's folders (see QueueDirs.check): at once, or (force false) at most once a second. */
  checkFolders(force = true): void {
    this.dirs.check(force);
  }

  /** The settings in force for this queue. */
  settings(): Promise<Settings> {
    return this.queueSettings.get();
  }

  /** Publishes a message (see Broker.publish). */
  publish(body: unknown, options?: PublishOptions): Promise<Message> {
    return this.writer.publish(body, options);
  }

  /** Publishes many messages with the same options, in order (see MessageWriter.publishMany). */
  publishMany(bodies: Iterable<unknown>, options?: PublishOptions): Promise<number> {
    return this.writer.publishMany(bodies, options);
  }

  /** Writes a message (from another queue) into this one as a new ready file; returns its name. */
  put(msg: Message): Promise<string> {
    return this.writer.put(msg);
  }

  /** Takes one ready message by its file name (as consume would); null if it is gone. */
  takeByName(name: string, lease?: number): Message | null {
    return this.claimer.takeByName(name, lease);
  }

  /** Takes ready messages, waiting for them if asked to (see Broker.consume). */
  async consume(options: ConsumeOptions = {}): Promise<Message[]> {
    const wait = options.wait ?? 0;
    if (typeof wait !== 'number' || !(wait >= 0) || !(wait <= MAX_SECONDS)) {
      throw invalid('wait', wait, `a number of seconds, from 0 to ${MAX_SECONDS} (ten years)`);
    }
    // A wait that begins within a poll interval of the last one's empty end (a worker's idle
    // loop) goes on polling: its first look is a poll (one lstat), not a full look, which
    // would list a folder changed within its time's resolution (24 s on sshfs) every wait.
    // A consume without a wait always looks.
    const polling = wait > 0 && this.config.timers.now() - this.lastEmptyWait < this.config.pollIntervalMs;
    const first = await this.consumeNow(options, !polling);
    if (first.length > 0 || wait === 0) return first;
    const watcher = this.watcher();
    // On the timers' clock (monotonic by default): a change of the system time or a
    // broker clock set by hand does not stretch or cut the wait.
    const deadline = this.config.timers.now() + wait * 1000;
    for (;;) {
      const reason = await watcher.wait(deadline, options.signal);
      if (reason === 'aborted') return [];
      const got = await this.consumeNow({ ...options, skipCleaning: true }, false);
      if (got.length > 0) {
        watcher.reset();
        return got;
      }
      if (reason === 'timeout') {
        this.lastEmptyWait = this.config.timers.now();
        return [];
      }
    }
  }

  /** The folder watcher that waiting consumers share (made on first use). */
  watcher(): FolderWatcher {
    this.folderWatcher ??= new FolderWatcher(this.dir, {
      pollMax: this.config.pollIntervalMs,
      notify: this.config.notify,
      timers: this.config.timers,
      now: this.config.timers.now,
    });
    return this.folderWatcher;
  }

  /** Stops watching the folder; the folders kept pinned are let go (opened again if the queue is used). */
  close(): void {
    this.dirs.close();
    this.folderWatcher?.close();
    this.folderWatcher = undefined;
  }

  /** One look for messages; `look` false: a waiting consumer's poll (see ClaimCursor.worthListing). */
  private async consumeNow(options: ConsumeOptions, look = true): Promise<Message[]> {
    const n = options.n ?? 1;
    if (!Number.isSafeInteger(n) || n < 1) throw invalid('n', n, 'a whole number, at least 1');
    if (options.lease !== undefined && !(Number.isSafeInteger(options.lease) && options.lease >= 1 && options.lease <= MAX_SECONDS)) {
      throw invalid('lease', options.lease, `a whole number of seconds, from 1 to ${MAX_SECONDS} (ten years)`);
    }
    // Idle (the last listing found nothing): one lstat tells whether anything may have come
    // since; the folders' check, the settings and cleaning wait for that, or for the safety net.
    if ((options.skipCleaning === true || !this.cleaner.mayBeDue()) && !this.cursor.worthListing(look)) return [];
    this.dirs.check(false);
    const now = this.queueSettings.now();
    const settings = now instanceof Promise ? await now : now;
    if (!options.skipCleaning && this.cleaner.due(settings)) await this.cleaner.cleanIfDue(settings);

    const out: Message[] = [];
    let claimedSinceListing = 1; // lets the first pass list once if the cache is empty
    let swept = false;
    while (out.length < n) {
      const candidate = this.cursor.next(claimedSinceListing > 0);
      if (candidate === 'exhausted') {
        // Nothing taken, but names jumped over: one more listing, walked name by name.
        if (out.length === 0 && !swept && this.cursor.sweep()) {
          swept = true;
          continue;
        }
        break;
      }
      if (candidate === 'relisted') {
        claimedSinceListing = 0;
        continue;
      }
      const msg = this.claimer.claimReady(candidate, options.lease ?? settings.message_timeout, options.lease);
      if (msg) {
        out.push(msg);
        claimedSinceListing++;
      }
    }
    return out;
  }

  /** Moves delayed messages that are due into the queue (see ClaimCursor.promoteDue). */
  promoteDue(force = false, p?: QueuePaths): number {
    return this.cursor.promoteDue(force, p);
  }

  /** Drops the cached listing, so that the next consume lists the folder. */
  forgetListing(): void {
    this.cursor.forget();
  }

  /** Deletes an in-flight message (see Settler.ack); with `rec`, a task record is kept. */
  ack(target: Message | string, rec?: RecordDetails): void {
    this.settler.ack(target, rec);
  }

  /** Keeps the record of a finished task (see Settler.record). */
  record(target: Message | string, name: string, outcome: Outcome, action: RecordAction, rec: RecordDetails): void {
    this.settler.record(target, name, outcome, action, rec);
  }

  /** A failed message: requeued, dead-lettered or dropped (see Settler.nack). */
  nack(target: Message | string, options?: NackOptions, rec?: RecordDetails): Promise<NackResult> {
    return this.settler.nack(target, options, rec);
  }

  /** Gives a message back untried (see Settler.release). */
  release(target: Message | string, rec?: RecordDetails): Promise<NackResult> {
    return this.settler.release(target, rec);
  }

  /** Whether an in-flight file of this name is there (a look-up, not a claim). */
  isInFlight(name: string): boolean {
    return this.settler.isInFlight(name);
  }

  /** Renews a lease: the in-flight file is renamed to a later expiry. Returns its new name. */
  extend(target: Message | string, seconds: number): string {
    return this.settler.extend(target, seconds);
  }

  /** Requeues expired messages and tidies the folders (see Cleaner.clean). */
  clean(options?: CleanOptions): Promise<CleanResult> {
    return this.cleaner.clean(options);
  }

  /** Lists messages without taking them (see Inspector.peek). */
  peek(options?: PeekOptions): Peeked[] {
    return this.inspector.peek(options);
  }

  /** Deletes every message, ready, delayed and in flight. */
  purge(): PurgeResult {
    return this.inspector.purge();
  }

  /** Deletes one message by its file name; returns its path. */
  deleteMessage(name: string): string {
    return this.inspector.deleteMessage(name);
  }

  /** The queue's messages by state (see Broker.counts). */
  counts(): Promise<QueueCounts> {
    return this.inspector.counts();
  }
}
