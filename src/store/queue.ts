/**
 * One queue: a folder of ready messages, `work/` of messages in flight, and `corrupt/`
 * where unreadable message files are moved aside for a person to look at.
 *
 * Every claim (consume, a cleaner or nack taking an in-flight file, a lease extension)
 * is one rename to a name that carries a fresh random token, so no two claimers can
 * choose the same target; of two racing renames of one file exactly one finds it.
 */
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { DdmqError, isDdmqError } from '../format/errors.js';
import { decodeMessage, encodeMessage, isCount, Message, MESSAGE_KEYS, type Requeue } from '../format/message.js';
import {
  checkMessageFileName,
  type InFlightName,
  inFlightFileName,
  isMessageName,
  newClaimToken,
  newMessageId,
  parseInFlightName,
  parseReadyName,
  readyFileName,
  readyNameOf,
} from '../format/names.js';
import { ReadyListing } from '../format/listing.js';
import { MAX_ERROR_CHARS, type Outcome, type RecordAction, type RecordDetails, type TaskRecord } from '../format/records.js';
import { commitFiles, type StagedFile, stageFile } from './durable.js';
import { FolderWatcher } from './watch.js';
import { queueNumbers } from '../format/queue-number.js';
import { checkSetting, MAX_SECONDS, type Settings, type SettingsLayer } from '../format/settings.js';
import {
  claimRename,
  ensureDir,
  entryKind,
  exists,
  errnoOf,
  ioError,
  listIfExists,
  readRegularFile,
  retryStale,
  shownPath,
  TEMP_PREFIX,
  unlinkIfExists,
  writeFileAtomic,
} from './fsx.js';
import {
  canPin,
  CORRUPT_DIR,
  DELAYED_DIR,
  type OpenFolder,
  type PinnedQueue,
  QueueFolders,
  type QueuePaths,
  SETTINGS_FILE,
  type Subfolder,
  unpin,
} from './folders.js';

export { CORRUPT_DIR, DELAYED_DIR, SETTINGS_FILE, WORK_DIR } from './folders.js';

/** With fsync, publishMany commits this many messages at a time: enough for the disk to take their syncs together, few enough open files. */
const DURABLE_GROUP = 512;
/** Seconds a cleaner or nack holds an in-flight file it claimed while it requeues it. */
const REQUEUE_CLAIM_SECONDS = 60;
/** A message file that does not parse and changed this recently may still be being written. */
const FRESH_WRITE_MS = 10_000;

export interface QueueHost {
  readonly root: string;
  /** The queue's settings, layered and cached by the broker. */
  settings(queue: string): Promise<Settings>;
  /** The same without a promise, when the broker has them cached; else undefined. */
  cachedSettings(queue: string): Settings | undefined;
  readonly fsync: boolean | undefined;
  /** Keep the queue's folders pinned for the per-message calls even in a tree only this user can write. */
  readonly pinFolders: boolean;
  /** Milliseconds between listings while a consumer still has names in hand (the floor). */
  readonly listingInterval: number;
  readonly cleanInterval: number;
  /** Longest polling interval of a waiting consumer, in ms. */
  readonly pollInterval: number;
  /** Whether waiting consumers use file-change notification. */
  readonly notify: boolean;
  /** Writes a message into another queue (made if missing): for dead letters and redrive. */
  put(queue: string, msg: Message): Promise<string>;
  warn(err: DdmqError): void;
  /** Whether log() goes anywhere: the per-message lines are not even made when not. */
  readonly logging: boolean;
  log(level: 'info' | 'debug', text: string): void;
  /** Epoch milliseconds; replaceable in tests. */
  now(): number;
  /** Keeps a task record (buffered; see records.ts). */
  record(record: Omit<TaskRecord, 'host' | 'pid'>): void;
  /** Bounds the queue's task records (history_max_age, history_max_bytes); called by clean. */
  pruneRecords(queue: string, settings: Settings): void;
}

export interface PublishOptions {
  /** Lower is served first; default: the `priority` setting. */
  priority?: number;
  /** This message's lease in seconds; default: the queue's `message_timeout`. */
  timeout?: number | null;
  /** Requeue on nack and expiry; default: the `requeue` setting. */
  requeue?: boolean;
  /** Priority when requeued; implies requeue; default: the `requeue_prio` setting. */
  requeuePrio?: number;
  /** How many requeues are allowed; default: unlimited. */
  requeueLimit?: number | null;
  /** Extra keys stored in the message file (ignored by the original tool). */
  extra?: Record<string, unknown>;
  /** Seconds before the message may be consumed: it waits in delayed/ until then. */
  delay?: number;
}

export interface ConsumeOptions {
  /** How many messages to take at most (default 1). */
  n?: number;
  /**
   * Seconds to wait for a message when there is none (default 0: return [] at once).
   * Waiting uses change notification where the file system gives it and polling with
   * backoff (up to the broker's pollInterval) where it does not.
   */
  wait?: number;
  /** Ends a wait early: consume then returns what it has ([]). */
  signal?: AbortSignal;
  /** Lease in seconds for these messages, over the message's own and the queue's. */
  timeout?: number;
  /** Do not clean expired messages first. */
  skipCleaning?: boolean;
}

export interface NackOptions {
  /** true: requeue whatever the settings and limit say; false: drop. Default: as the settings say. */
  requeue?: boolean;
  /** Why it failed: kept with the message as "last_error" (and in its dead letter, and its task record). */
  error?: string;
  /** For the task record: how the task ended, when the caller knows. */
  exitCode?: number | null;
  signal?: string | null;
}

export interface NackResult {
  /** dead-lettered: not to be requeued (past its limit, or requeue off), moved to the queue's dead_letter queue. */
  action: 'requeued' | 'dropped' | 'dead-lettered';
  /** The ready file name of the requeued message, or of the dead letter in its queue. */
  filename?: string;
  /** Requeued after a retry backoff: the epoch second it is ready again (it waits in delayed/ until then). */
  due?: number;
  /** Dead-lettered: the dead-letter queue it went to. */
  queue?: string;
}

type RequeueReason = 'failed' | 'expired' | 'forced' | 'released';

/** Seconds a message that failed `failures` times before waits before it is ready again. */
export function retryDelay(settings: Settings, failures: number): number {
  if (settings.retry_delay === 0) return 0;
  const delay = settings.retry_delay * settings.retry_backoff ** Math.min(failures, 1000);
  return Math.min(settings.retry_delay_max, Math.ceil(delay));
}

export interface CleanOptions {
  /** Also remove temporary files that killed writers left (default true); lists the ready folder. */
  temps?: boolean;
  /** Remove only temporary files older than this many seconds (default 3600). */
  tempGrace?: number;
}

export interface CleanResult {
  queue: string;
  requeued: number;
  dropped: number;
  deadLettered: number;
  corrupt: number;
  tempsRemoved: number;
  /** Cleaning every queue: set when this one could not be cleaned (the counts are then 0). */
  error?: DdmqError;
}

export type MessageState = 'ready' | 'in-flight' | 'delayed';

export interface PurgeResult {
  queue: string;
  ready: number;
  delayed: number;
  inFlight: number;
}

export interface PeekOptions {
  /** Which messages (default all three). */
  states?: MessageState[];
  /** At most this many (default 100). */
  limit?: number;
  /** Only messages whose text contains this. */
  match?: string;
}

export interface Peeked {
  state: MessageState;
  filename: string;
  /** Epoch second the lease runs out (in flight) or the message is due (delayed). */
  until: number | null;
  /** null if the file could not be read as a message (then `error` says why). */
  message: Message | null;
  error?: string;
}

export interface QueueCounts {
  queue: string;
  ready: number;
  /** Published with a delay that has not passed yet. */
  delayed: number;
  inFlight: number;
  /** In flight with a lease that has run out (requeued by the next clean). */
  expired: number;
  corrupt: number;
  /** The epoch second the first delayed message is due; null if none is delayed. */
  nextDue: number | null;
  /** Counting every queue: set when this one could not be read (the counts are then 0). */
  error?: DdmqError;
}

export class Queue {
  readonly name: string;
  /** The queue's folders: the only way to them (see folders.ts). */
  readonly folders: QueueFolders;
  readonly dir: string;
  readonly workDir: string;
  readonly corruptDir: string;
  readonly delayedDir: string;
  /**
   * The paths the per-message calls use: plain, or through the folders kept pinned in
   * `hot` when others can write the tree (see folders.ts). Set by checkFolders().
   */
  private paths: QueuePaths;
  private hot: PinnedQueue | null = null;
  // With the separator, for paths built per message (names are checked; join would only normalise).
  private dirSlash: string;
  private workSlash: string;
  /** Pinned folders held open across an await, and how many times (holdPaths). */
  private readonly holds = new Map<PinnedQueue, number>();
  /** Pinned folders no longer in use, to be closed once no one holds them. */
  private readonly retired = new Set<PinnedQueue>();
  /** When folders.check() last ran (host clock, ms). */
  private checkedAt = -Infinity;
  /** Whether it was said once that this queue, the root's dead_letter, drops its own dead letters. */
  private warnedOwnDeadLetter = false;

  /** The cached, sorted listing that consume claims from. */
  private listing = ReadyListing.EMPTY;
  private listedAt = -Infinity;
  private listingCost = 0;
  /** Files that did not parse but were fresh, put back until the given time. */
  private readonly deferred = new Map<string, number>();
  private lastCleaned = -Infinity;
  /** Claims this queue object lost to other clients (a measure of contention). */
  lostClaims = 0;
  /** Claims lost since the last listing: each doubles how far this consumer jumps ahead. */
  private losingStreak = 0;
  /** The group_shared setting as last read, for folders made on the way. */
  private groupShared = false;
  /** The history setting as last read: whether ack, nack and release leave task records. */
  private history = true;
  private folderWatcher: FolderWatcher | undefined;
  /** When delayed/ is to be looked at again, and what looking cost last time. */
  private nextDelayedScan = 0;
  private delayedScanCost = 0;

  constructor(
    private readonly host: QueueHost,
    name: string,
  ) {
    this.name = name;
    this.folders = new QueueFolders(host.root, name);
    this.paths = this.folders.paths;
    this.dir = this.paths.dir;
    this.workDir = this.paths.work;
    this.corruptDir = this.paths.corrupt;
    this.delayedDir = this.paths.delayed;
    this.dirSlash = this.dir + sep;
    this.workSlash = this.workDir + sep;
  }

  /** The folders this process uses now (pinned or plain): for tests and diagnostics. */
  get pinned(): boolean {
    return this.hot !== null;
  }

  /**
   * Checks that the queue's folders are real folders, not links (UNSAFE_PATH), and that
   * the queue exists (QUEUE_MISSING): when the queue is opened, and again at most once a
   * second from the per-message calls. When others can write the tree (or the broker is
   * told to pin), the per-message calls go through the folders kept pinned, opened again
   * when a name no longer leads to the folder that was pinned.
   */
  checkFolders(force = true): void {
    const now = this.host.now();
    if (!force && now - this.checkedAt < 1000) return;
    const found = this.folders.check();
    if (found === null) throw queueMissing(this.name, this.dir);
    if ((found.exposed || this.host.pinFolders) && canPin()) {
      if (this.hot === null || !QueueFolders.current(this.hot, found)) {
        const next = this.folders.pin();
        if (next === null) throw queueMissing(this.name, this.dir);
        this.usePaths(next);
      }
    } else if (this.hot !== null) {
      this.usePaths(null);
    }
    this.checkedAt = now;
  }

  /**
   * Switches the per-message paths to `pinned` (or to the plain ones). The folders pinned
   * before are closed once the call under way has returned (its synchronous part may still
   * use their paths, and a descriptor closed too soon could be reused for another), or,
   * when a call holds them across an await (holdPaths), once it lets them go. Closing them
   * later than that would let an attacker who makes us pin again and again (removing
   * work/ over and over) run the process out of descriptors.
   */
  private usePaths(pinned: PinnedQueue | null): void {
    const old = this.hot;
    if (old !== null) {
      if (this.holds.has(old)) this.retired.add(old);
      else setImmediate(() => unpin(old));
    }
    this.hot = pinned;
    this.paths = pinned?.paths ?? this.folders.paths;
    this.dirSlash = this.paths.dir + sep;
    this.workSlash = this.paths.work + sep;
  }

  /** Keeps the folders pinned now open until the returned function is called. */
  private holdPaths(): () => void {
    const held = this.hot;
    if (held === null) return () => {};
    this.holds.set(held, (this.holds.get(held) ?? 0) + 1);
    return () => {
      const left = this.holds.get(held)! - 1;
      if (left > 0) return void this.holds.set(held, left);
      this.holds.delete(held);
      if (this.retired.delete(held)) unpin(held);
    };
  }

  /**
   * After an ENOENT through folders kept pinned: whether they were stale (the queue was
   * deleted and made again by another client, a subfolder removed), in which case they
   * are pinned again and the call may be tried once more.
   */
  private stalePin(err: unknown): boolean {
    if (this.hot === null || !isDdmqError(err, 'IO') || err.osCode !== 'ENOENT' || !exists(this.dir)) return false;
    const before = this.hot;
    this.checkFolders(true);
    return this.hot !== before;
  }

  /**
   * Makes sure a subfolder is there for the per-message calls. With plain paths it is made
   * if missing. With pinned folders a missing one is made with mkdir through the pinned
   * queue folder (mkdir never follows a link) and then pinned like the others; a link
   * swapped in meanwhile is refused (UNSAFE_PATH) and its path keeps leading nowhere.
   */
  private ensureSubfolder(name: Subfolder): void {
    if (this.hot === null) ensureDir(this.paths[name], { groupShared: this.groupShared });
    else if (this.hot.sub[name] === null) {
      ensureDir(this.hot.dir.at + sep + name, { groupShared: this.groupShared });
      this.checkFolders(true);
    }
  }

  async settings(): Promise<Settings> {
    const settings = this.host.cachedSettings(this.name) ?? (await this.host.settings(this.name));
    this.groupShared = settings.group_shared;
    this.history = settings.history;
    return settings;
  }

  /** The settings, without a promise when they are cached (the hot path of every message). */
  private settingsNow(): Settings | Promise<Settings> {
    const cached = this.host.cachedSettings(this.name);
    if (cached === undefined) return this.settings();
    this.groupShared = cached.group_shared;
    this.history = cached.history;
    return cached;
  }

  // ---- publish ----------------------------------------------------------------------

  async publish(body: unknown, options: PublishOptions = {}): Promise<Message> {
    this.checkFolders(false);
    const now = this.settingsNow();
    const settings = now instanceof Promise ? await now : now;
    checkPublishOptions(options);
    if (this.host.fsync ?? settings.fsync) {
      const msg = this.newMessage(body, options, settings);
      await this.writeDurably([msg], settings);
      return msg;
    }
    return this.publishWith(body, options, settings);
  }

  /**
   * Publishes many messages with the same options, in order: settings are read once and
   * no promise is made per message. Returns how many were written; a failure (a full
   * disk) stops it there, with the messages before it published.
   */
  async publishMany(bodies: Iterable<unknown>, options: PublishOptions = {}): Promise<number> {
    this.checkFolders(false);
    const settings = await this.settings();
    checkPublishOptions(options);
    let written = 0;
    if (this.host.fsync ?? settings.fsync) {
      // Durable: in groups whose data syncs and folder sync are shared (durable.ts).
      let group: Message[] = [];
      try {
        for (const body of bodies) {
          group.push(this.newMessage(body, options, settings));
          if (group.length === DURABLE_GROUP) {
            const full = group;
            group = []; // a failure writing it must not have it written again below
            await this.writeDurably(full, settings);
            written += full.length;
          }
        }
      } catch (err) {
        // The bodies before a failing one are published, as without fsync.
        await this.writeDurably(group, settings);
        throw err;
      }
      await this.writeDurably(group, settings);
      return written + group.length;
    }
    for (const body of bodies) {
      this.publishWith(body, options, settings);
      written++;
    }
    return written;
  }

  private publishWith(body: unknown, options: PublishOptions, settings: Settings): Message {
    const msg = this.newMessage(body, options, settings);
    if (msg.due !== undefined) {
      this.writeDelayed(msg, settings, msg.due);
      return msg;
    }
    this.write(msg, settings, this.paths.dir, msg.filename);
    if (this.host.logging) this.host.log('debug', `published ${this.name}/${msg.filename}`);
    return msg;
  }

  /** A new message of this queue (its file name made, and, with a delay, when it is due). */
  private newMessage(body: unknown, options: PublishOptions, settings: Settings): Message {
    const text = body === undefined ? '' : body;
    const requeue: Requeue = options.requeuePrio ?? options.requeue ?? settings.requeue;
    const msg = new Message({
      message: text,
      queue: this.name,
      priority: options.priority ?? settings.priority,
      queueNumber: queueNumbers.next(),
      id: newMessageId(),
      filename: '',
      timeout: options.timeout ?? null,
      requeue,
      requeueCounter: 0,
      requeueLimit: options.requeueLimit ?? null,
      extra: copyExtra(options.extra),
    });
    msg.filename = readyFileName(msg.priority, msg.queueNumber, msg.id);
    if (options.delay !== undefined && options.delay > 0) msg.due = Math.ceil(this.host.now() / 1000 + options.delay);
    return msg;
  }

  /**
   * Writes messages with fsync, their syncs shared (durable.ts): each goes into the queue,
   * or into delayed/ if it has a due time. Returns once all of them are on disk. On a
   * failure the messages before the one that failed are written (and synced), the rest not.
   */
  private async writeDurably(msgs: readonly Message[], settings: Settings): Promise<void> {
    if (msgs.length === 0) return;
    // The staged files' folders stay open across the syncs: the pins in use now, and any
    // pinned anew while staging (making delayed/, or after a stale pin).
    const releases = [this.holdPaths()];
    let held = this.hot;
    const staged: StagedFile[] = [];
    try {
      // A message that cannot be written stops the group there; those before it are
      // committed all the same, as they would be published without fsync.
      for (const msg of msgs) {
        staged.push(this.stage(msg, settings));
        if (this.hot !== held) {
          held = this.hot;
          releases.push(this.holdPaths());
        }
      }
    } finally {
      try {
        await commitFiles(staged);
      } finally {
        for (const release of releases) release();
        for (const msg of msgs.slice(0, staged.length)) {
          if (msg.due !== undefined) this.nextDelayedScan = Math.min(this.nextDelayedScan, msg.due * 1000);
          else if (this.listing.remaining > 0 && this.listing.sortsBeforeNext(msg.filename)) this.forgetListing();
        }
      }
    }
    if (this.host.logging) for (const msg of msgs) this.host.log('debug', `published ${this.name}/${msg.filename} (synced)`);
  }

  /** The first half of a durable write: the message in a temporary file, beside its name. */
  private stage(msg: Message, settings: Settings): StagedFile {
    const data = this.encodeForWrite(msg);
    if (msg.due === undefined) {
      try {
        return stageFile(this.paths.dir, msg.filename, data, settings.group_shared);
      } catch (err) {
        if (this.stalePin(err)) return stageFile(this.paths.dir, msg.filename, data, settings.group_shared);
        throw this.missingOr(err);
      }
    }
    const name = inFlightFileName(msg.due, msg.filename, '');
    for (let attempt = 1; ; attempt++) {
      this.groupShared = settings.group_shared;
      this.ensureSubfolder('delayed');
      try {
        return stageFile(this.paths.delayed, name, data, settings.group_shared);
      } catch (err) {
        // RACE: a cleaner removed delayed/ (found empty) between our mkdir and our write (see writeDelayed).
        if (!isDdmqError(err, 'IO') || err.osCode !== 'ENOENT' || attempt >= 5 || !exists(this.dir)) throw err;
        this.stalePin(err);
      }
    }
  }

  /**
   * Writes a message into delayed/, named by the second it is due; moved into the queue when
   * it is. `given`: folders pinned for one call (clean's), else the queue's own.
   */
  private writeDelayed(msg: Message, settings: Settings, due: number, given?: QueuePaths): void {
    const name = inFlightFileName(due, msg.filename, '');
    if (given !== undefined && given !== this.paths) {
      // delayed/ pinned for this one write, made first through the pinned queue folder.
      const delayed = this.folders.pinSubfolder('delayed', settings.group_shared);
      try {
        this.write(msg, settings, delayed.at, name);
      } finally {
        delayed.close();
      }
    } else {
      for (let attempt = 1; ; attempt++) {
        this.groupShared = settings.group_shared;
        this.ensureSubfolder('delayed');
        try {
          this.write(msg, settings, this.paths.delayed, name);
          break;
        } catch (err) {
          // RACE: a cleaner removed delayed/ (found empty) between our mkdir and our write, or
          // removed the delayed/ we hold pinned: look again (and pin again) before a retry.
          if (!isDdmqError(err, 'IO') || err.osCode !== 'ENOENT' || attempt >= 5 || !exists(this.dir)) throw err;
          this.stalePin(err);
        }
      }
    }
    this.nextDelayedScan = Math.min(this.nextDelayedScan, due * 1000);
  }

  /** Writes a message (from another queue) into this one as a new ready file; returns its name. */
  async put(msg: Message): Promise<string> {
    const settings = await this.settings();
    const copy = new Message({ ...msg, queue: this.name, queueNumber: queueNumbers.next(), filename: '', extra: { ...msg.extra } });
    copy.filename = readyFileName(copy.priority, copy.queueNumber, copy.id);
    copy.due = undefined;
    if (this.host.fsync ?? settings.fsync) await this.writeDurably([copy], settings);
    else this.write(copy, settings);
    return copy.filename;
  }

  /** Takes one ready message by its file name (as consume would); null if it is gone. */
  takeByName(name: string, lease = REQUEUE_CLAIM_SECONDS): Message | null {
    checkMessageFileName(name, ['ready']);
    return this.claimReady(name, lease, lease);
  }

  private encodeForWrite(msg: Message): string {
    try {
      const data = encodeMessage(msg);
      const kind = typeof msg.message;
      if (kind === 'undefined' || kind === 'function' || kind === 'symbol') throw new Error(`a ${kind} is not a JSON value`);
      return data;
    } catch (err) {
      throw new DdmqError('INVALID_ARGUMENT', `the message cannot be written as JSON: ${(err as Error).message}`);
    }
  }

  private write(msg: Message, settings: Settings, dir = this.paths.dir, name = msg.filename): void {
    const data = this.encodeForWrite(msg);
    const options = { fsync: this.host.fsync ?? settings.fsync, groupShared: settings.group_shared };
    try {
      writeFileAtomic(dir, name, data, options);
    } catch (err) {
      if (dir === this.paths.dir && this.stalePin(err)) writeFileAtomic(this.paths.dir, name, data, options);
      else throw this.missingOr(err);
    }
    // A message this process writes ahead of its own next cached name must not wait for
    // the next listing to be served.
    if (this.listing.remaining > 0 && this.listing.sortsBeforeNext(msg.filename)) this.forgetListing();
  }

  // ---- consume ----------------------------------------------------------------------

  async consume(options: ConsumeOptions = {}): Promise<Message[]> {
    const wait = options.wait ?? 0;
    if (typeof wait !== 'number' || !(wait >= 0) || !(wait <= MAX_SECONDS)) {
      throw invalid('wait', wait, `a number of seconds, from 0 to ${MAX_SECONDS} (ten years)`);
    }
    const first = await this.consumeNow(options);
    if (first.length > 0 || wait === 0) return first;
    const watcher = this.watcher();
    const deadline = Date.now() + wait * 1000;
    for (;;) {
      const reason = await watcher.wait(deadline, options.signal);
      if (reason === 'aborted') return [];
      const got = await this.consumeNow({ ...options, skipCleaning: true });
      if (got.length > 0) {
        watcher.reset();
        return got;
      }
      if (reason === 'timeout') return [];
    }
  }

  /** The folder watcher that waiting consumers share (made on first use). */
  watcher(): FolderWatcher {
    this.folderWatcher ??= new FolderWatcher(this.dir, { pollMax: this.host.pollInterval, notify: this.host.notify });
    return this.folderWatcher;
  }

  /** Stops watching the folder; the folders kept pinned are let go (opened again if the queue is used). */
  close(): void {
    this.usePaths(null);
    this.checkedAt = -Infinity;
    this.folderWatcher?.close();
    this.folderWatcher = undefined;
  }

  private async consumeNow(options: ConsumeOptions): Promise<Message[]> {
    this.checkFolders(false);
    const n = options.n ?? 1;
    if (!Number.isSafeInteger(n) || n < 1) throw invalid('n', n, 'a whole number, at least 1');
    if (options.timeout !== undefined && !(Number.isSafeInteger(options.timeout) && options.timeout >= 1 && options.timeout <= MAX_SECONDS)) {
      throw invalid('timeout', options.timeout, `a whole number of seconds, from 1 to ${MAX_SECONDS} (ten years)`);
    }
    const now = this.settingsNow();
    const settings = now instanceof Promise ? await now : now;
    if (!options.skipCleaning && this.host.now() - Math.max(this.lastCleaned, settings.cleaned * 1000) >= this.host.cleanInterval) {
      await this.cleanIfDue(settings);
    }

    const out: Message[] = [];
    let claimedSinceListing = 1; // lets the first pass list once if the cache is empty
    while (out.length < n) {
      const candidate = this.nextCandidate(claimedSinceListing > 0);
      if (candidate === 'exhausted') break;
      if (candidate === 'relisted') {
        claimedSinceListing = 0;
        continue;
      }
      const msg = this.claimReady(candidate, options.timeout ?? settings.message_timeout, options.timeout);
      if (msg) {
        out.push(msg);
        claimedSinceListing++;
      }
    }
    return out;
  }

  /**
   * The next name to try from the cached listing. The folder is listed again when the
   * listing is used up, or when it is older than max(listingInterval, 10 × what the last
   * listing took), so that listing costs at most about a tenth of the time however deep
   * the queue is. 'exhausted' when a fresh listing gave nothing that could be claimed.
   */
  private nextCandidate(mayRelist: boolean): string | 'relisted' | 'exhausted' {
    const now = this.host.now();
    const maxAge = Math.max(this.host.listingInterval, 10 * this.listingCost);
    if (now - this.listedAt <= maxAge) {
      for (let name = this.listing.next(); name !== undefined; name = this.listing.next()) {
        if (this.deferred.size === 0) return name;
        const until = this.deferred.get(name);
        if (until === undefined) return name;
        if (until <= now) {
          this.deferred.delete(name);
          return name;
        }
      }
      if (!mayRelist) return 'exhausted';
    }
    this.relist();
    return this.listing.size === 0 ? 'exhausted' : 'relisted';
  }

  /**
   * Moves delayed messages whose time has come into the queue. Any client may do it; two
   * that race rename the same file to the same ready name, and one of them finds it gone.
   * Looked at no more than once a second (or ten times what the last look cost).
   */
  promoteDue(force = false, p: QueuePaths = this.paths): number {
    const now = this.host.now();
    if (!force && now < this.nextDelayedScan) return 0;
    const started = monotonicMs();
    const nowSec = Math.floor(now / 1000);
    let moved = 0;
    for (const name of listIfExists(p.delayed) ?? []) {
      const file = parseInFlightName(name);
      if (file === null || file.expiry > nowSec) continue;
      try {
        if (claimRename(join(p.delayed, name), join(p.dir, readyNameOf(file)))) moved++;
      } catch (err) {
        throw this.missingOr(err);
      }
    }
    this.delayedScanCost = monotonicMs() - started;
    this.nextDelayedScan = now + Math.max(1000, 10 * this.delayedScanCost);
    if (moved > 0 && this.host.logging) this.host.log('debug', `${this.name}: ${moved} delayed messages are due`);
    return moved;
  }

  private relist(): void {
    const started = monotonicMs();
    this.checkFolders(false);
    this.promoteDue();
    const names = this.list(this.paths.dir);
    // An old listing with names left is refreshed (names to serve earlier go in front);
    // a used-up one is replaced.
    this.listing = this.listing.remaining > 0 ? this.listing.refresh(names) : ReadyListing.of(names);
    this.losingStreak = 0;
    this.listedAt = this.host.now();
    this.listingCost = monotonicMs() - started;
    this.host.log('debug', `listed ${this.name}: ${this.listing.size} ready in ${this.listingCost.toFixed(1)} ms`);
  }

  /** Drops the cached listing, so that the next consume lists the folder. */
  forgetListing(): void {
    this.listing = ReadyListing.EMPTY;
  }

  /** Takes one ready file: rename into work/ first, read after. null if it was lost or unusable. */
  private claimReady(ready: string, lease: number, callTimeout: number | undefined): Message | null {
    const nowSec = Math.floor(this.host.now() / 1000);
    let inFlight = inFlightFileName(nowSec + lease, ready, newClaimToken());
    if (!this.claim(this.dirSlash + ready, inFlight)) {
      this.lostClaims++;
      this.jumpAhead();
      return null;
    }
    const msg = this.readClaimed(inFlight);
    if (msg === null) return null;
    // The message's own lease applies when the call did not set one; it is only known now.
    if (callTimeout === undefined && msg.timeout !== null && msg.timeout !== lease) {
      const renewed = inFlightFileName(nowSec + msg.timeout, ready, newClaimToken());
      if (!this.claim(this.workSlash + inFlight, renewed)) return null;
      inFlight = renewed;
    }
    msg.filename = inFlight;
    msg.consumedAt = this.host.now();
    if (this.host.logging) this.host.log('debug', `consumed ${this.name}/${inFlight}`);
    return msg;
  }

  /**
   * A lost claim means another consumer is working at this point of the listing. Walking
   * on behind it, this consumer would lose again at every name it takes first. So it jumps
   * ahead a random distance, within a window that doubles with every claim lost since its
   * last listing (2, 4, 8, ... up to 1,024 names). Consumers spread out over the listing,
   * each walks a stretch of its own and rarely meets another; the names one jumps over
   * are taken by the consumer behind, which walks into them, or found at the next listing.
   * So order is kept to within the window, and exactly when there is no competition.
   */
  private jumpAhead(): void {
    // Never past half of what is left: jumping off the end would mean listing the folder again.
    const window = Math.min(2 ** Math.min(10, ++this.losingStreak), Math.floor(this.listing.remaining / 2) + 1);
    this.listing.skip(Math.floor(Math.random() * window));
  }

  private claim(src: string, inFlightName: string, p: QueuePaths = this.paths): boolean {
    try {
      return claimRename(src, p.work + sep + inFlightName);
    } catch (err) {
      // work/ itself may be gone (deleted by hand): make it again and try once more.
      if (errnoOf((err as { cause?: unknown }).cause) === 'ENOENT' && exists(this.dir)) {
        if (p === this.paths) {
          // The work/ we hold pinned may have been removed: look again, then make it.
          if (this.hot !== null) this.checkFolders(true);
          this.ensureSubfolder('work');
          p = this.paths;
        } else {
          ensureDir(p.work, { groupShared: this.groupShared });
        }
        return claimRename(src, join(p.work, inFlightName));
      }
      throw this.missingOr(err);
    }
  }

  /**
   * Reads a file this client just claimed into work/. A file that does not parse is put
   * back if it changed in the last seconds (the original tool writes in place, so it may
   * be half written), and otherwise moved to corrupt/ and reported.
   */
  private readClaimed(inFlight: string, p: QueuePaths = this.paths): Message | null {
    const path = p.work + sep + inFlight;
    const file = parseInFlightName(inFlight)!;
    let content: Buffer | null;
    try {
      content = readRegularFile(path);
    } catch (err) {
      // A link, a folder or a FIFO under a message name, or a file too large to read.
      if (isDdmqError(err, 'UNSAFE_PATH') || (isDdmqError(err, 'IO') && err.osCode === 'EFBIG')) {
        this.moveAside(path, inFlight, err);
        return null;
      }
      throw err;
    }
    if (content === null) return null;
    try {
      const msg = decodeMessage(content, { queue: this.name, file, path: this.workDir + sep + inFlight }); // the path to show
      msg.queue = this.name; // the folder it is in, whatever the file says
      return msg;
    } catch (err) {
      if (!isDdmqError(err, 'CORRUPT_MESSAGE')) throw err;
      const now = this.host.now();
      const mtime = statMtime(path);
      // Changed in the last seconds (or "in the future", by a skewed clock): maybe half written.
      if (mtime !== null && mtime > now - FRESH_WRITE_MS) {
        const ready = readyNameOf(file);
        if (claimRename(path, join(p.dir, ready))) this.deferred.set(ready, Math.min(mtime, now) + FRESH_WRITE_MS);
        return null;
      }
      this.moveAside(path, inFlight, err);
      return null;
    }
  }

  private moveAside(path: string, name: string, err: DdmqError): void {
    // Pinned: corrupt/ may not be there yet, and nothing may redirect this rename out of the tree.
    const corrupt = this.folders.pinSubfolder('corrupt', this.groupShared);
    try {
      claimRename(path, corrupt.at + sep + name);
    } finally {
      corrupt.close();
    }
    const target = join(this.corruptDir, name);
    this.host.warn(new DdmqError('CORRUPT_MESSAGE', `${err.message}; moved to ${target}`, { path: target, cause: err }));
  }

  // ---- ack, nack, extend ------------------------------------------------------------

  /**
   * Deletes an in-flight message. NOT_IN_FLIGHT if its lease was lost. With `rec`, a task
   * record is kept (the broker's calls; redrive's own acks of dead letters are not tasks).
   */
  ack(target: Message | string, rec?: RecordDetails): void {
    this.checkFolders(false);
    const name = this.inFlightNameOf(target);
    // Given only a name (a one-shot `ddmq ack`), the file is read for its attempt and id.
    const known = rec !== undefined && typeof target === 'string' && this.recording() ? this.peekInFlight(name) : undefined;
    let gone: boolean;
    try {
      gone = unlinkIfExists(this.workSlash + name);
    } catch (err) {
      throw this.missingOr(err);
    }
    if (!gone) throw exists(this.dir) ? notInFlight(this.name, name) : queueMissing(this.name, this.dir);
    if (this.host.logging) this.host.log('debug', `acked ${this.name}/${name}`);
    if (rec !== undefined && this.recording()) this.record(known ?? target, name, 'done', 'acked', rec);
  }

  /** Whether task records are kept: the history setting, as cached (no I/O on the per-message path). */
  private recording(): boolean {
    const cached = this.host.cachedSettings(this.name);
    return cached !== undefined ? cached.history : this.history;
  }

  /** An in-flight message read without taking it, for its record; undefined if it cannot be read. */
  private peekInFlight(name: string): Message | undefined {
    try {
      const content = readRegularFile(this.workSlash + name);
      return content === null ? undefined : decodeMessage(content, { queue: this.name, file: parseInFlightName(name)!, path: this.workSlash + name });
    } catch {
      return undefined; // the record then has no attempt; the ack goes on
    }
  }

  /**
   * Keeps the record of a finished task. From a Message it has the attempt and, if this
   * process consumed it, the start; from a bare in-flight name only the id.
   */
  record(target: Message | string, name: string, outcome: Outcome, action: RecordAction, rec: RecordDetails): void {
    const end = this.host.now();
    const msg = typeof target === 'string' ? undefined : target;
    const start = msg?.consumedAt ?? null;
    const lastError = outcome === 'done' ? null : (rec.error ?? (typeof msg?.extra.last_error === 'string' ? msg.extra.last_error : null));
    try {
      this.host.record({
        queue: this.name,
        id: msg?.id ?? parseInFlightName(name)?.id ?? '',
        start,
        end,
        runtime_ms: start === null ? null : end - start,
        outcome,
        action,
        exit_code: rec.exitCode ?? null,
        signal: rec.signal ?? null,
        attempt: msg === undefined ? null : msg.requeueCounter + 1,
        error: lastError === null ? null : String(lastError).slice(0, MAX_ERROR_CHARS),
      });
    } catch (err) {
      // A record is a nicety: it must never turn a settled message into an error.
      this.host.warn(new DdmqError('IO', `task record of ${this.name}/${name} not kept: ${(err as Error).message}`, { cause: err }));
    }
  }

  /**
   * A failed message: requeued (after the retry backoff), dead-lettered or dropped, by the
   * options, the message and the settings. `requeue: true` requeues at once whatever they
   * say; `requeue: false` drops.
   */
  async nack(target: Message | string, options: NackOptions = {}, rec?: RecordDetails): Promise<NackResult> {
    this.checkFolders(false);
    const name = this.inFlightNameOf(target);
    const details: RecordDetails | undefined = rec && { exitCode: options.exitCode, signal: options.signal, error: options.error, ...rec };
    if (options.requeue === false) {
      const known = details !== undefined && typeof target === 'string' && this.recording() ? this.peekInFlight(name) : undefined;
      if (!unlinkIfExists(this.workSlash + name)) throw notInFlight(this.name, name);
      if (details !== undefined && this.recording()) this.record(known ?? target, name, 'failed', 'dropped', details);
      return { action: 'dropped' };
    }
    const { msg, claimed } = this.claimForRequeue(target, name);
    if (options.error !== undefined) msg.extra = { ...msg.extra, last_error: String(options.error).slice(0, MAX_ERROR_CHARS) };
    const result = await this.requeueOrDrop(msg, claimed, options.requeue === true ? 'forced' : 'failed', await this.settings());
    if (details !== undefined && this.recording()) this.record(msg, name, 'failed', result.action, details);
    return result;
  }

  /**
   * Gives a message back untried: it is ready again at once (at `requeue_prio`), its
   * requeue counter unchanged, whatever its requeue settings say. For a worker that stops
   * before the message's task could finish.
   */
  async release(target: Message | string, rec?: RecordDetails): Promise<NackResult> {
    this.checkFolders(false);
    const name = this.inFlightNameOf(target);
    const { msg, claimed } = this.claimForRequeue(target, name);
    const result = await this.requeueOrDrop(msg, claimed, 'released', await this.settings());
    if (rec !== undefined && this.recording()) this.record(msg, name, 'released', result.action, rec);
    return result;
  }

  /** Claims an in-flight file for a requeue (so no cleaner takes it meanwhile) and reads it if need be. */
  private claimForRequeue(target: Message | string, name: string): { msg: Message; claimed: string } {
    const claimed = this.claimInFlight(parseInFlightName(name)!, REQUEUE_CLAIM_SECONDS);
    if (claimed === null) throw notInFlight(this.name, name);
    if (typeof target !== 'string') return { msg: target, claimed };
    const msg = this.readClaimed(claimed);
    if (msg === null) throw new DdmqError('CORRUPT_MESSAGE', `message ${this.name}/${name} could not be read`);
    return { msg, claimed };
  }

  /** Whether an in-flight file of this name is there (a look-up, not a claim). */
  isInFlight(name: string): boolean {
    checkMessageFileName(name, ['in-flight']);
    return entryKind(this.workSlash + name) !== null;
  }

  /** Renews a lease: the in-flight file is renamed to a later expiry. Returns its new name. */
  extend(target: Message | string, seconds: number): string {
    if (!Number.isSafeInteger(seconds) || seconds < 1 || seconds > MAX_SECONDS) {
      throw invalid('seconds', seconds, `a whole number from 1 to ${MAX_SECONDS} (ten years)`);
    }
    this.checkFolders(false);
    const name = this.inFlightNameOf(target);
    const renamed = this.claimInFlight(parseInFlightName(name)!, seconds);
    if (renamed === null) throw notInFlight(this.name, name);
    if (typeof target !== 'string') target.filename = renamed;
    this.host.log('debug', `extended ${this.name}/${name} to ${renamed}`);
    return renamed;
  }

  /** Renames an in-flight file to a fresh claim of it with a lease of `seconds`; null if gone. */
  private claimInFlight(file: InFlightName, seconds: number, p: QueuePaths = this.paths): string | null {
    const nowSec = Math.floor(this.host.now() / 1000);
    const renamed = inFlightFileName(nowSec + seconds, readyNameOf(file), newClaimToken());
    return this.claim(join(p.work, file.name), renamed, p) ? renamed : null;
  }

  /**
   * The second half of nack, release and expiry: the claimed in-flight file is replaced by
   * a new ready (or delayed) file, written first, so that a crash in between duplicates
   * but never loses it; or by a dead letter; or it is dropped.
   *
   * - failed (a nack): requeued after the retry backoff, if its requeue settings and its
   *   limit allow; otherwise dead-lettered (with a dead_letter queue) or dropped;
   * - expired (a dead consumer's lease): the same, but ready again at once;
   * - forced (nack with requeue: true): requeued at once, whatever the settings say;
   * - released (a worker stopping): requeued at once, not counted as an attempt.
   */
  private async requeueOrDrop(
    msg: Message,
    claimed: string,
    why: RequeueReason,
    settings: Settings,
    p: QueuePaths = this.paths,
  ): Promise<NackResult> {
    const claimedPath = join(p.work, claimed);
    const limit = msg.requeueLimit ?? settings.requeue_limit;
    const withinLimit = limit === null || msg.requeueCounter < limit;
    const wanted = (msg.requeue ?? settings.requeue) !== false;
    if (why !== 'forced' && why !== 'released' && !(wanted && withinLimit)) {
      const reason = withinLimit ? 'requeue is off' : 'requeue limit reached';
      if (settings.dead_letter !== null && settings.dead_letter !== this.name) {
        // To the dead-letter queue with its history; written there first.
        const dead = new Message({
          ...msg,
          extra: {
            ...msg.extra,
            dead_letter: {
              from: this.name,
              reason,
              requeue_counter: msg.requeueCounter,
              last_error: msg.extra.last_error ?? null,
              at: Math.floor(this.host.now() / 1000),
            },
          },
        });
        // claimedPath may go through pinned folders: they stay open across the await.
        const release = p === this.paths ? this.holdPaths() : () => {};
        try {
          const filename = await this.host.put(settings.dead_letter, dead);
          unlinkIfExists(claimedPath);
          this.host.log('info', `dead-lettered ${this.name}/${claimed} to ${settings.dead_letter}/${filename}`);
          return { action: 'dead-lettered', queue: settings.dead_letter, filename };
        } finally {
          release();
        }
      }
      if (settings.dead_letter === this.name && !this.warnedOwnDeadLetter) {
        // Only the root's file can say so (a queue's own may not): this queue is the last stop.
        this.warnedOwnDeadLetter = true;
        this.host.warn(
          new DdmqError(
            'INVALID_SETTING',
            `queue ${this.name} is the root's dead_letter queue, so its own dead letters are dropped ` +
              `(${this.name}/${claimed}: ${reason}); set its own dead_letter to another queue to keep them`,
            { path: join(this.host.root, 'ddmq.yaml') },
          ),
        );
      }
      unlinkIfExists(claimedPath);
      this.host.log('info', `dropped ${this.name}/${claimed} (${reason})`);
      return { action: 'dropped' };
    }
    const again = new Message({
      ...msg,
      priority: typeof msg.requeue === 'number' ? msg.requeue : settings.requeue_prio,
      queueNumber: queueNumbers.next(),
      requeueCounter: why === 'released' ? msg.requeueCounter : msg.requeueCounter + 1,
      filename: '',
      extra: { ...msg.extra },
    });
    again.filename = readyFileName(again.priority, again.queueNumber, again.id);
    const delay = why === 'failed' ? retryDelay(settings, msg.requeueCounter) : 0;
    const due = delay > 0 ? Math.ceil(this.host.now() / 1000 + delay) : undefined;
    if ((this.host.fsync ?? settings.fsync) && p === this.paths) {
      // The new file is on disk (its syncs shared with other writers) before the old one goes.
      again.due = due;
      // claimedPath may go through pinned folders, which the write may pin again (making
      // delayed/): they stay open until the old file is gone.
      const release = this.holdPaths();
      try {
        await this.writeDurably([again], settings);
        unlinkIfExists(claimedPath);
      } finally {
        release();
      }
      this.host.log('info', `requeued ${this.name}/${claimed} as ${again.filename}${due === undefined ? '' : `, ready in ${delay} s`}`);
      return due === undefined ? { action: 'requeued', filename: again.filename } : { action: 'requeued', filename: again.filename, due };
    }
    if (due !== undefined) {
      // Waits out its backoff in delayed/, out of the way of the other messages.
      this.writeDelayed(again, settings, due, p);
      unlinkIfExists(claimedPath);
      this.host.log('info', `requeued ${this.name}/${claimed} as ${again.filename}, ready in ${delay} s`);
      return { action: 'requeued', filename: again.filename, due };
    }
    this.write(again, settings, p.dir);
    unlinkIfExists(claimedPath);
    this.host.log('info', `requeued ${this.name}/${claimed} as ${again.filename}`);
    return { action: 'requeued', filename: again.filename };
  }

  private inFlightNameOf(target: Message | string): string {
    const name = typeof target === 'string' ? target : target.filename;
    checkMessageFileName(name, ['in-flight']);
    return name;
  }

  // ---- clean, purge, delete, counts -------------------------------------------------

  private async cleanIfDue(settings: Settings): Promise<void> {
    const now = this.host.now();
    const last = Math.max(this.lastCleaned, settings.cleaned * 1000);
    if (now - last < this.host.cleanInterval) return;
    try {
      await this.clean();
    } catch (err) {
      // Housekeeping that fails (a full disk while requeueing) must not stop consuming;
      // the messages stay in work/ and a later clean takes them.
      if (!(err instanceof DdmqError) || err.code === 'QUEUE_MISSING') throw err;
      this.host.warn(new DdmqError(err.code, `clean before consume failed: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
    }
  }

  /**
   * Requeues (or drops, at their limit) the in-flight messages whose lease ran out. Each is
   * first claimed by a rename to a fresh name with a short lease of its own: of two
   * cleaners only the one whose rename wins requeues it. Also moves delayed messages that
   * are due into the queue, and removes temporary files that writers killed mid-write left
   * behind. Works through pinned folders (folders.ts).
   */
  async clean(options: CleanOptions = {}): Promise<CleanResult> {
    const settings = await this.settings();
    const result: CleanResult = { queue: this.name, requeued: 0, dropped: 0, deadLettered: 0, corrupt: 0, tempsRemoved: 0 };
    const due = Math.floor(this.host.now() / 1000) - settings.expiry_grace;
    this.lastCleaned = this.host.now();
    await this.folders.withPinned(async (pinned) => {
      if (pinned === null) throw queueMissing(this.name, this.dir);
      const p = pinned.paths;
      if (pinned.sub.delayed) this.promoteDue(true, p);
      if (pinned.sub.work) {
        for (const name of listIfExists(p.work) ?? []) {
          const file = isMessageName(name) ? parseInFlightName(name) : null;
          if (file === null || file.expiry >= due) continue;
          const claimed = this.claimInFlight(file, REQUEUE_CLAIM_SECONDS, p);
          if (claimed === null) continue;
          const msg = this.readClaimed(claimed, p);
          if (msg === null) {
            result.corrupt++;
            continue;
          }
          const { action } = await this.requeueOrDrop(msg, claimed, 'expired', settings, p);
          result[action === 'dead-lettered' ? 'deadLettered' : action]++;
          if (settings.history) this.record(msg, name, 'expired', action, {});
        }
      }
      if (options.temps !== false) {
        const dirs = [p.dir, pinned.sub.work?.at, pinned.sub.delayed?.at].filter((d) => d !== undefined);
        result.tempsRemoved = this.removeOldTemps(dirs, (options.tempGrace ?? 3600) * 1000);
      }
      if (pinned.sub.delayed) this.removeIfEmpty(pinned.sub.delayed, p.dir, DELAYED_DIR);
      if (pinned.sub.corrupt) this.removeIfEmpty(pinned.sub.corrupt, p.dir, CORRUPT_DIR);
    });
    this.host.pruneRecords(this.name, settings);
    if (result.requeued + result.dropped + result.deadLettered + result.corrupt > 0) {
      this.host.log('info', `cleaned ${this.name}: ${result.requeued} requeued, ${result.dropped} dropped, ${result.deadLettered} dead-lettered`);
    }
    return result;
  }

  /**
   * Removes delayed/ or corrupt/ once nothing is in it: the original tool does not know
   * these folders, and its delete of a queue stops at one it finds there. A writer that
   * loses the race makes the folder again (writeDelayed, pinSubfolder).
   */
  private removeIfEmpty(folder: OpenFolder, dirAt: string, name: string): void {
    if ((listIfExists(folder.at) ?? ['?']).length > 0) return;
    folder.close();
    try {
      fs.rmdirSync(dirAt + sep + name); // never follows a link: one swapped in fails (ENOTDIR)
    } catch (err) {
      const code = errnoOf(err);
      // Not empty any more, gone already, or busy (a network file system's open handle).
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT' && code !== 'EBUSY') throw ioError(err, 'remove folder', dirAt + sep + name);
    }
  }

  private removeOldTemps(dirs: string[], graceMs: number): number {
    let removed = 0;
    const now = this.host.now();
    for (const dir of dirs) {
      for (const name of listIfExists(dir) ?? []) {
        if (!name.startsWith(TEMP_PREFIX)) continue;
        const path = join(dir, name);
        const mtime = statMtime(path);
        if (mtime !== null && now - mtime > graceMs && unlinkIfExists(path)) removed++;
      }
    }
    return removed;
  }

  /**
   * Lists messages without taking them: ready ones in serving order, in-flight ones by
   * lease expiry, delayed ones by due time. Nothing is renamed or changed.
   */
  peek(options: PeekOptions = {}): Peeked[] {
    const states = options.states ?? ['ready', 'in-flight', 'delayed'];
    const limit = options.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1) throw invalid('limit', limit, 'a whole number, at least 1');
    return this.folders.withPinned((pinned) => {
      if (pinned === null) throw queueMissing(this.name, this.dir);
      const p = pinned.paths;
      const out: Peeked[] = [];
      const add = (state: MessageState, dir: string, name: string, until: number | null): boolean => {
        let message: Message | null = null;
        let error: string | undefined;
        try {
          const content = readRegularFile(join(dir, name));
          if (content === null) return false; // taken meanwhile
          const file = state === 'ready' ? parseReadyName(name)! : parseInFlightName(name)!;
          message = decodeMessage(content, { queue: this.name, file, path: shownPath(join(dir, name)) });
          message.queue = this.name;
        } catch (err) {
          if (!(err instanceof DdmqError) || (err.code !== 'CORRUPT_MESSAGE' && err.code !== 'UNSAFE_PATH')) throw err;
          error = err.message;
        }
        if (options.match !== undefined && !(message?.text ?? '').includes(options.match)) return false;
        out.push({ state, filename: name, until, message, ...(error ? { error } : {}) });
        return out.length >= limit;
      };
      if (states.includes('ready')) {
        const listing = ReadyListing.of(listIfExists(p.dir) ?? []);
        for (let name = listing.next(); name !== undefined; name = listing.next()) if (add('ready', p.dir, name, null)) return out;
      }
      for (const [state, sub] of [['in-flight', pinned.sub.work], ['delayed', pinned.sub.delayed]] as const) {
        if (!states.includes(state) || sub === null) continue;
        const files = (listIfExists(sub.at) ?? []).map(parseInFlightName).filter((f) => f !== null);
        files.sort((a, b) => a.expiry - b.expiry || (a.name < b.name ? -1 : 1));
        for (const f of files) if (add(state, sub.at, f.name, f.expiry)) return out;
      }
      return out;
    });
  }

  /** Deletes every message, ready, delayed and in flight. Counts what this call deleted. */
  purge(): PurgeResult {
    const result = this.folders.withPinned((pinned) => {
      if (pinned === null) throw queueMissing(this.name, this.dir);
      const removeAll = (dir: string | undefined) => {
        let removed = 0;
        for (const name of (dir === undefined ? null : listIfExists(dir)) ?? []) {
          if (isMessageName(name) && unlinkIfExists(join(dir!, name))) removed++;
        }
        return removed;
      };
      const inFlight = removeAll(pinned.sub.work?.at);
      const ready = removeAll(pinned.paths.dir);
      const delayed = removeAll(pinned.sub.delayed?.at);
      return { queue: this.name, ready, delayed, inFlight };
    });
    this.forgetListing();
    this.host.log('info', `purged ${this.name}: ${result.ready} ready, ${result.delayed} delayed, ${result.inFlight} in flight`);
    return result;
  }

  /**
   * Deletes one message by its file name: a ready one, or one in flight or delayed (their
   * names have the same shape). Returns its path.
   */
  deleteMessage(name: string): string {
    const kind = checkMessageFileName(name, ['ready', 'in-flight']);
    this.checkFolders(false);
    const p = this.paths;
    const paths = kind === 'ready' ? [join(p.dir, name)] : [join(p.work, name), join(p.delayed, name)];
    for (const path of paths) if (unlinkIfExists(path)) return shownPath(path);
    const where = kind === 'ready' ? '' : ' (in flight or delayed)';
    throw new DdmqError('MESSAGE_NOT_FOUND', `no message ${name}${where} in queue ${this.name}`, { path: shownPath(paths[0]!) });
  }

  /** `expired`: in flight and past expiry plus `expiry_grace`, so the next clean requeues it. */
  async counts(): Promise<QueueCounts> {
    const due = Math.floor(this.host.now() / 1000) - (await this.settings()).expiry_grace;
    return this.folders.withPinned((pinned) => {
      if (pinned === null) throw queueMissing(this.name, this.dir);
      const listOf = (dir: string | undefined) => (dir === undefined ? null : listIfExists(dir)) ?? [];
      let ready = 0;
      let inFlight = 0;
      let expired = 0;
      for (const name of listOf(pinned.paths.dir)) if (isMessageName(name) && parseReadyName(name)) ready++;
      for (const name of listOf(pinned.sub.work?.at)) {
        const file = isMessageName(name) ? parseInFlightName(name) : null;
        if (file === null) continue;
        inFlight++;
        if (file.expiry < due) expired++;
      }
      const corrupt = listOf(pinned.sub.corrupt?.at).filter(isMessageName).length;
      let delayed = 0;
      let nextDue: number | null = null;
      for (const name of listOf(pinned.sub.delayed?.at)) {
        const file = parseInFlightName(name);
        if (file === null) continue;
        delayed++;
        if (nextDue === null || file.expiry < nextDue) nextDue = file.expiry;
      }
      return { queue: this.name, ready, delayed, inFlight, expired, corrupt, nextDue };
    });
  }

  /** Lists one of the queue's folders; a missing one means the queue was deleted. */
  private list(dir: string): string[] {
    const names = listIfExists(dir);
    if (names !== null) return names;
    if (dir === this.paths.work && exists(join(this.dir, SETTINGS_FILE))) return [];
    throw queueMissing(this.name, this.dir);
  }

  /** Turns ENOENT on the queue folder into QUEUE_MISSING. */
  private missingOr(err: unknown): unknown {
    const cause = (err as { cause?: unknown }).cause ?? err;
    if (errnoOf(cause) === 'ENOENT' && !exists(this.dir)) return queueMissing(this.name, this.dir);
    return err;
  }
}

export function queueMissing(name: string, dir: string): DdmqError {
  return new DdmqError('QUEUE_MISSING', `queue ${name} does not exist (no ${join(dir, SETTINGS_FILE)})`, {
    path: dir,
  });
}

function notInFlight(queue: string, name: string): DdmqError {
  return new DdmqError(
    'NOT_IN_FLIGHT',
    `message ${queue}/work/${name} is not in flight: its lease ran out and it was requeued or taken, or it was acked already`,
    { path: name },
  );
}

function invalid(what: string, value: unknown, expected: string): DdmqError {
  return new DdmqError('INVALID_ARGUMENT', `invalid ${what} ${JSON.stringify(value)}: expected ${expected}`);
}

function checkPublishOptions(o: PublishOptions): void {
  const check = (key: keyof Settings, value: unknown, what: string) => {
    try {
      checkSetting(key, value, 'the publish call');
    } catch {
      throw invalid(what, value, key === 'message_timeout' ? `a whole number of seconds, from 1 to ${MAX_SECONDS} (ten years)` : 'a non-negative whole number');
    }
  };
  if (o.priority !== undefined) check('priority', o.priority, 'priority');
  if (o.timeout !== undefined && o.timeout !== null) check('message_timeout', o.timeout, 'timeout');
  if (o.requeuePrio !== undefined) check('requeue_prio', o.requeuePrio, 'requeue priority');
  if (o.requeueLimit !== undefined && o.requeueLimit !== null && !isCount(o.requeueLimit)) {
    throw invalid('requeue limit', o.requeueLimit, 'a non-negative whole number');
  }
  if (o.requeue !== undefined && typeof o.requeue !== 'boolean') throw invalid('requeue', o.requeue, 'true or false');
  if (o.requeue === false && o.requeuePrio !== undefined) {
    throw new DdmqError('INVALID_ARGUMENT', 'requeue: false and a requeue priority contradict each other (a requeue priority implies requeue)');
  }
  if (o.delay !== undefined && !(typeof o.delay === 'number' && o.delay >= 0 && o.delay <= MAX_SECONDS)) {
    throw invalid('delay', o.delay, 'a number of seconds, 0 or more (at most ten years)');
  }
}

function copyExtra(extra: Record<string, unknown> | undefined): Record<string, unknown> {
  if (extra === undefined) return {};
  const clash = Object.keys(extra).find((k) => (MESSAGE_KEYS as readonly string[]).includes(k));
  if (clash) throw invalid('extra key', clash, 'a key that is not one of the message file\'s own keys');
  return Object.fromEntries(Object.entries(extra));
}

function statMtime(path: string): number | null {
  try {
    return retryStale(() => fs.lstatSync(path)).mtimeMs;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw ioError(err, 'look up', path);
  }
}

export type { SettingsLayer };

/** The monotonic clock in ms; performance.now() would load perf_hooks, ~2 ms of a short command. */
function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
