/**
 * One root folder of queues. Opening it checks that it is initialised (ROOT/ddmq.yaml);
 * with `create` it is made, and so are missing queues that are published to or consumed
 * from.
 */
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { DdmqError, isDdmqError } from '../format/errors.js';
import { Message } from '../format/message.js';
import { checkQueueName, isMessageName, isQueueName, parseReadyName } from '../format/names.js';
import { ReadyListing } from '../format/listing.js';
import {
  checkSetting,
  isSettingKey,
  layerSettings,
  parseSettingsText,
  type Settings,
  type SettingsLayer,
  stringifySettings,
} from '../format/settings.js';
import {
  createFileIfMissing,
  ensureDir,
  errnoOf,
  ioError,
  isNfsSillyRename,
  isRealDir,
  isRealFile,
  listIfExists,
  makeDirs,
  readRegularFile,
  removeDirRetrying,
  retryStale,
  TEMP_PREFIX,
  unlinkIfExists,
  writeFileAtomic,
} from './fsx.js';
import { startThreadPool } from './durable.js';
import { OpenFolder, QueueFolders, SUBFOLDERS } from './folders.js';
import type { RecordDetails, TaskRecord } from '../format/records.js';
import type { CurrentCounts, Stats } from '../format/stats.js';
import { PRESENCE_ACTIVE_MS, type WorkerPresence } from '../format/presence.js';
import { type PresenceSnapshot, PresenceBeacon, prunePresence, readPresence } from './presence.js';
import { HOST, pruneRecords, readQueueRecords, RecordTail, RecordWriter, recordQueues, removeRecordsFolderIfEmpty } from './records.js';
import {
  type CleanOptions,
  type CleanResult,
  type ConsumeOptions,
  CORRUPT_DIR,
  DELAYED_DIR,
  type NackOptions,
  type NackResult,
  type PeekOptions,
  type Peeked,
  type PublishOptions,
  type PurgeResult,
  Queue,
  type QueueCounts,
  type QueueHost,
  queueMissing,
  SETTINGS_FILE,
  WORK_DIR,
} from './queue.js';

export interface BrokerOptions {
  /** Create the root, and queues on publish/consume, when they are missing. */
  create?: boolean;
  /** Force fsync on or off, over the `fsync` setting. */
  fsync?: boolean;
  /**
   * Work through folders opened without following links (pinned) for every call, also in
   * a tree only this user can write (default false: there, the per-message calls use
   * plain paths checked once a second, about a tenth cheaper on a fast disk; in a tree
   * others can write, they are always pinned). The environment variable DDMQ_PIN_FOLDERS=1
   * sets the default to true (for the command line). See "Nothing outside the root" in the README.
   */
  pinFolders?: boolean;
  /**
   * Milliseconds a consumer may serve from its cached listing before it lists the folder
   * again (default 1000). The real interval is max(this, 10 × the last listing's time).
   */
  listingInterval?: number;
  /** Milliseconds between the automatic cleans that consume does (default 60000). */
  cleanInterval?: number;
  /**
   * Longest interval, in ms, at which a waiting consumer polls the folder (default 1000).
   * Changes made on this host wake it at once through file-change notification; changes
   * made by other hosts on a network file system are seen within this interval, plus
   * the file system's own cache.
   */
  pollInterval?: number;
  /** Use file-change notification while waiting (default true); false polls only. */
  notify?: boolean;
  /** Milliseconds settings files are cached (default 2000). */
  settingsTtl?: number;
  /** Called with corrupt files moved aside and other problems that do not stop the call. */
  onWarning?: (warning: DdmqError) => void;
  /** Called with what the broker does, for -v/-d output. */
  log?: (level: 'info' | 'debug', text: string) => void;
  /** Epoch milliseconds (tests replace it to move time). */
  now?: () => number;
}

export interface RedriveOptions {
  /** Move them here instead of where each came from. */
  to?: string;
  /** Only the messages with these ids. */
  ids?: string[];
  /** At most this many. */
  limit?: number;
}

export interface RedriveResult {
  moved: number;
  /** Dead letters with nowhere to go (no origin, or their queue is gone): they stay. */
  skipped: number;
  /** Ids asked for that are not in the dead-letter queue. */
  missing: string[];
}

interface CachedLayer {
  layer: SettingsLayer;
  readAt: number;
}

export class Broker implements QueueHost {
  readonly root: string;
  readonly create: boolean;
  readonly fsync: boolean | undefined;
  readonly pinFolders: boolean;
  readonly listingInterval: number;
  readonly cleanInterval: number;
  readonly pollInterval: number;
  readonly notify: boolean;
  private readonly settingsTtl: number;
  private readonly onWarning: (warning: DdmqError) => void;
  private readonly logger: ((level: 'info' | 'debug', text: string) => void) | undefined;
  private readonly clock: () => number;
  private readonly queues = new Map<string, Queue>();
  /** Settings files by queue name; '' is the root's. */
  private readonly layers = new Map<string, CachedLayer>();
  /** Layered settings by queue, with the file layers they were made of. */
  private readonly layered = new Map<string, { settings: Settings; root: CachedLayer; own: CachedLayer }>();
  /** This process's task records of this root, buffered (records.ts). */
  private readonly recorder: RecordWriter;

  private constructor(root: string, options: BrokerOptions) {
    this.root = root;
    this.create = options.create ?? false;
    this.fsync = options.fsync;
    this.pinFolders = options.pinFolders ?? process.env.DDMQ_PIN_FOLDERS === '1';
    this.listingInterval = options.listingInterval ?? 1000;
    this.cleanInterval = options.cleanInterval ?? 60_000;
    this.pollInterval = options.pollInterval ?? 1000;
    this.notify = options.notify ?? true;
    this.settingsTtl = options.settingsTtl ?? 2000;
    this.onWarning = options.onWarning ?? ((w) => process.emitWarning(w.message, { code: w.code }));
    this.logger = options.log;
    this.clock = options.now ?? Date.now;
    this.recorder = new RecordWriter(root, {
      now: () => this.now(),
      warn: (w) => this.warn(w),
      groupShared: (queue) => (this.cachedSettings(queue) ?? layerSettings(this.layers.get('')?.layer)).group_shared,
    });
  }

  /** Opens the root; ROOT_MISSING or ROOT_UNINITIALISED unless `create` is set. */
  static async open(root: string, options: BrokerOptions = {}): Promise<Broker> {
    if (typeof root !== 'string' || root.length === 0 || root.includes('\0')) {
      throw new DdmqError('INVALID_ARGUMENT', `invalid root folder ${JSON.stringify(root)}`);
    }
    const broker = new Broker(root, options);
    // The root itself may be a link: the user named it. Nothing below it is followed.
    let kind = rootKind(root);
    if (kind === null) {
      if (!broker.create) {
        throw new DdmqError('ROOT_MISSING', `root folder ${root} does not exist (create it with -f / { create: true })`, {
          path: root,
        });
      }
      makeDirs(root);
      kind = rootKind(root);
    }
    if (kind !== 'dir') {
      throw new DdmqError('ROOT_MISSING', `root ${root} is not a folder`, { path: root });
    }
    if (!isRealFile(join(root, SETTINGS_FILE))) {
      if (!broker.create) {
        throw new DdmqError(
          'ROOT_UNINITIALISED',
          `root folder ${root} is not initialised: it has no ${SETTINGS_FILE} (initialise it with -f / { create: true })`,
          { path: root },
        );
      }
      createFileIfMissing(root, SETTINGS_FILE, '', { fsync: false });
    }
    await broker.layer('');
    return broker;
  }

  now(): number {
    return this.clock();
  }

  warn(warning: DdmqError): void {
    this.onWarning(warning);
  }

  get logging(): boolean {
    return this.logger !== undefined;
  }

  log(level: 'info' | 'debug', text: string): void {
    this.logger?.(level, text);
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
    const fsync = this.fsync ?? (await this.settings(queue)).fsync;
    return fsync && startThreadPool();
  }

  // ---- settings ---------------------------------------------------------------------

  /** The settings in force for a queue (defaults < root < queue), or for the root. */
  async settings(queue?: string): Promise<Settings> {
    if (queue !== undefined) {
      const cached = this.cachedSettings(checkQueueName(queue));
      if (cached !== undefined) return cached;
    }
    const root = await this.layer('');
    if (queue === undefined) return layerSettings(root);
    return layerSettings(root, await this.layer(checkQueueName(queue)));
  }

  /**
   * A queue's settings without I/O or a promise, when both files were read less than
   * settingsTtl ago; undefined otherwise. Publish and consume call it for every message.
   */
  cachedSettings(queue: string): Settings | undefined {
    if (queue === '') return undefined; // '' is the root's own layer, not a queue
    const now = this.now();
    const root = this.layers.get('');
    const own = this.layers.get(queue);
    if (!root || !own || now - root.readAt >= this.settingsTtl || now - own.readAt >= this.settingsTtl) return undefined;
    const memo = this.layered.get(queue);
    if (memo && memo.root === root && memo.own === own) return memo.settings;
    const settings = layerSettings(root.layer, own.layer);
    this.layered.set(queue, { settings, root, own });
    return settings;
  }

  /** What one settings file says, read now: the root's, or a queue's. */
  async readSettingsFile(queue?: string): Promise<SettingsLayer> {
    if (queue !== undefined) this.checkQueueFolders(checkQueueName(queue));
    return this.layer(queue ?? '', true);
  }

  /**
   * Changes settings in the root's or a queue's ddmq.yaml, written atomically. A value of
   * null removes the key, so that the layer above applies again. Returns the new file.
   */
  async setSettings(queue: string | undefined, changes: Record<string, unknown>): Promise<SettingsLayer> {
    const key = queue === undefined ? '' : checkQueueName(queue);
    if (key !== '') this.checkQueueFolders(key);
    const source = key === '' ? 'the root settings' : `the settings of queue ${key}`;
    for (const [k, v] of Object.entries(changes)) if (isSettingKey(k) && v !== null) checkSetting(k, v, source);
    if (key !== '') checkNotOwnDeadLetter(key, changes.dead_letter);
    const next: SettingsLayer = { ...(await this.layer(key, true)) };
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === undefined) delete next[k];
      else Object.defineProperty(next, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    const shared = layerSettings(key === '' ? next : await this.layer(''), key === '' ? undefined : next).group_shared;
    const text = await stringifySettings(next);
    const options = { fsync: this.fsync ?? false, groupShared: shared };
    if (key === '') writeFileAtomic(this.root, SETTINGS_FILE, text, options);
    else this.inQueueFolder(key, (at) => writeFileAtomic(at, SETTINGS_FILE, text, options));
    this.layers.set(key, { layer: next, readAt: this.now() });
    // A root made shared must let the group make queues in it too.
    if (key === '' && next.group_shared === true) ensureDir(fs.realpathSync(this.root), { groupShared: true }); // the root may be a link: the user named it
    return next;
  }

  private async layer(queue: string, fresh = false): Promise<SettingsLayer> {
    const cached = this.layers.get(queue);
    const now = this.now();
    if (!fresh && cached && now - cached.readAt < this.settingsTtl) return cached.layer;
    const path = join(this.root, queue, SETTINGS_FILE);
    // A queue's file is read through its folder opened without following a link.
    const text = queue === '' ? readRegularFile(path) : this.inQueueFolder(queue, (at) => readRegularFile(at + sep + SETTINGS_FILE), null);
    if (text === null) {
      this.layers.delete(queue);
      if (queue === '') {
        throw new DdmqError('ROOT_UNINITIALISED', `root folder ${this.root} is not initialised: ${path} is gone`, {
          path,
        });
      }
      throw queueMissing(queue, join(this.root, queue));
    }
    const layer = await parseSettingsText(text, path);
    this.layers.set(queue, { layer, readAt: now });
    return layer;
  }

  // ---- queues -----------------------------------------------------------------------

  /**
   * Runs fn with the path of a queue's folder, opened without following a link (see
   * folders.ts); `missing` (or QUEUE_MISSING if not given) when the folder is not there.
   */
  private inQueueFolder<T>(queue: string, fn: (at: string) => T, missing?: T): T {
    const dir = OpenFolder.open(this.root, queue, join(this.root, queue));
    if (dir === null) {
      if (missing !== undefined) return missing;
      throw queueMissing(queue, join(this.root, queue));
    }
    try {
      return fn(dir.at);
    } finally {
      dir.close();
    }
  }

  /** The names of the queues in the root (real folders with a ddmq.yaml), sorted. */
  async listQueues(): Promise<string[]> {
    return this.queueEntries().filter((e) => e.problem === undefined).map((e) => e.name);
  }

  /**
   * The queues of the root (or the named ones), each with the problem that makes it
   * unusable, if any: a link in its place or in one of its folders, a missing queue.
   */
  async queueProblems(names?: string[]): Promise<{ name: string; problem?: DdmqError }[]> {
    if (names === undefined) return this.queueEntries();
    return names.map((name) => {
      try {
        if (this.queueFolderState(checkQueueName(name)) === 'none') return { name, problem: queueMissing(name, join(this.root, name)) };
        this.checkQueueFolders(name);
        return { name };
      } catch (err) {
        if (!isDdmqError(err)) throw err;
        return { name, problem: err };
      }
    });
  }

  /**
   * The entries of the root that are queues, or stand where a queue would and are not
   * usable as one (a link in place of a queue folder or its ddmq.yaml): those carry the
   * problem, so that commands over every queue can report them and go on with the rest.
   */
  private queueEntries(): { name: string; problem?: DdmqError }[] {
    const names = listIfExists(this.root);
    if (names === null) throw new DdmqError('ROOT_MISSING', `root folder ${this.root} does not exist`, { path: this.root });
    const out: { name: string; problem?: DdmqError }[] = [];
    for (const name of names.filter(isQueueName).sort()) {
      try {
        if (this.queueFolderState(name) === 'queue') {
          this.checkQueueFolders(name);
          out.push({ name });
        }
      } catch (err) {
        if (!isDdmqError(err)) throw err;
        out.push({ name, problem: err });
      }
    }
    return out;
  }

  /**
   * 'queue' for a real folder with a ddmq.yaml file, 'none' if either is missing; a link
   * (or anything else) in place of either is UNSAFE_PATH, and a failing look-up is IO:
   * neither may read as "missing", or a caller would go on to create what is there.
   */
  private queueFolderState(name: string): 'queue' | 'none' {
    const dir = join(this.root, name);
    if (!isRealDir(dir)) return 'none';
    return isRealFile(join(dir, SETTINGS_FILE)) ? 'queue' : 'none';
  }

  /** Checks that a queue's folders are not links (UNSAFE_PATH), for calls that do not open the Queue. */
  private checkQueueFolders(name: string): void {
    if (!new QueueFolders(this.root, name).check()) throw queueMissing(name, join(this.root, name));
  }

  async queueExists(name: string): Promise<boolean> {
    return this.queueFolderState(checkQueueName(name)) === 'queue';
  }

  /**
   * Creates a queue; false if it existed (its settings are then left alone: a ddmq.yaml
   * is only ever created where there is none, never replaced). Its ddmq.yaml holds only
   * the given settings that differ from the root's, so that later changes to the root
   * reach it.
   */
  async createQueue(name: string, settings: Partial<Settings> = {}): Promise<boolean> {
    checkQueueName(name);
    for (const [k, v] of Object.entries(settings)) if (isSettingKey(k)) checkSetting(k, v, `the settings for queue ${name}`);
    checkNotOwnDeadLetter(name, settings.dead_letter);
    if (this.queueFolderState(name) === 'queue') {
      this.checkQueueFolders(name); // a link planted in it is reported, not passed over
      return false;
    }
    const inherited = await this.settings();
    const own: SettingsLayer = {};
    for (const [k, v] of Object.entries(settings)) {
      if (v !== undefined && (!isSettingKey(k) || inherited[k] !== v)) Object.assign(own, { [k]: v });
    }
    const groupShared = (settings.group_shared ?? inherited.group_shared) === true;
    const text = await stringifySettings(own);
    ensureDir(join(this.root, name), { groupShared });
    const created = this.inQueueFolder(name, (at) => {
      ensureDir(at + sep + WORK_DIR, { groupShared });
      // The marker goes last: a queue with a ddmq.yaml is complete.
      return createFileIfMissing(at, SETTINGS_FILE, text, { fsync: this.fsync ?? false, groupShared });
    });
    if (created) this.log('info', `created queue ${name}`);
    return created;
  }

  /**
   * Deletes a queue and all its messages. Refuses (FOREIGN_FILES) before deleting anything
   * if the folder holds files ddmq did not write, and (UNSAFE_PATH) if the queue folder,
   * a subfolder or its ddmq.yaml is a link: everything is done through the folders opened
   * without following links (folders.ts), so nothing outside the queue can be reached.
   */
  async deleteQueue(name: string): Promise<void> {
    checkQueueName(name);
    const folders = new QueueFolders(this.root, name);
    const dir = folders.dir;
    await folders.withPinned(async (pinned) => {
      if (pinned === null) throw queueMissing(name, dir);
      // A folder without its ddmq.yaml is finished off only if something of ddmq is left in
      // it (the original's delete stops at delayed/ or corrupt/, after removing the marker):
      // an empty folder, or one of someone else's, is not a queue.
      if (!isRealFile(pinned.paths.dir + sep + SETTINGS_FILE)) {
        const left = listEntries(pinned.paths.dir);
        if (left.length === 0 || !left.every((e) => (SUBFOLDERS as readonly string[]).includes(e.name) || isOursEntry(e))) {
          throw queueMissing(name, dir);
        }
        this.log('info', `finishing the deletion of queue ${name}: its ddmq.yaml is gone, only ddmq's own files are left`);
      }
      const foreign: string[] = [];
      for (const entry of listEntries(pinned.paths.dir)) {
        if ((SUBFOLDERS as readonly string[]).includes(entry.name)) continue; // opened by pin(): real folders
        if (!isOursEntry(entry)) foreign.push(join(dir, entry.name));
      }
      for (const sub of SUBFOLDERS) {
        const folder = pinned.sub[sub];
        if (folder) for (const entry of listEntries(folder.at)) if (!isOursEntry(entry)) foreign.push(join(folder.path, entry.name));
      }
      if (foreign.length > 0) {
        const shown = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? `, and ${foreign.length - 5} more` : '');
        throw new DdmqError(
          'FOREIGN_FILES',
          `not deleting queue ${name}: it holds files ddmq did not write (${shown}); move them away first`,
          { path: dir },
        );
      }
      // The marker goes first, so that other clients stop using the queue.
      unlinkIfExists(pinned.paths.dir + sep + SETTINGS_FILE);
      this.queues.get(name)?.close();
      this.queues.delete(name);
      this.layers.delete(name);
      const folderAts = [...SUBFOLDERS.map((sub) => pinned.sub[sub]?.at).filter((at) => at !== undefined), pinned.paths.dir];
      for (let attempt = 1; ; attempt++) {
        for (const at of folderAts) {
          for (const n of listIfExists(at) ?? []) if (isOurs(n) && !isNfsSillyRename(n)) unlinkIfExists(at + sep + n);
        }
        try {
          // rmdir does not follow a link: a subfolder swapped for one fails here (ENOTDIR).
          for (const sub of SUBFOLDERS) if (pinned.sub[sub]) await removeDirRetrying(pinned.paths.dir + sep + sub);
          break;
        } catch (err) {
          // A client that published while we deleted left a new file: go round again.
          if (attempt >= 5 || (isDdmqError(err, 'IO') && err.osCode !== 'ENOTEMPTY')) throw err;
        }
      }
    });
    await removeDirRetrying(dir);
    this.log('info', `deleted queue ${name}`);
  }

  /** The Queue object for a name, checked to exist (or created, with `create`). */
  async queue(name: string): Promise<Queue> {
    checkQueueName(name);
    let q = this.queues.get(name);
    if (q) return q;
    try {
      await this.layer(name);
    } catch (err) {
      if (!this.create || !isDdmqError(err, 'QUEUE_MISSING')) throw err;
      await this.createQueue(name);
      await this.layer(name);
    }
    q = new Queue(this, name);
    // Its folders must be real folders: a planted link must not lead out of the tree.
    q.checkFolders();
    this.queues.set(name, q);
    return q;
  }

  // ---- messages ---------------------------------------------------------------------

  /** Publishes a message (a string or any JSON value) and returns it as written. */
  publish(queue: string, body: unknown, options?: PublishOptions): Promise<Message> {
    return this.withQueue(queue, (q) => q.publish(body, options));
  }

  /** Publishes many messages in order, much cheaper per message than publish; returns how many. */
  publishMany(queue: string, bodies: Iterable<unknown>, options?: PublishOptions): Promise<number> {
    return this.withQueue(queue, (q) => q.publishMany(bodies, options));
  }

  /** Takes up to `n` ready messages in order into work/; [] if there are none. */
  consume(queue: string, options?: ConsumeOptions): Promise<Message[]> {
    return this.withQueue(queue, (q) => q.consume(options));
  }

  /**
   * Runs fn on the queue, with no extra promise when the queue is known already (publish
   * and consume pass here for every message). With `create`, a queue deleted under us is
   * made again, once.
   */
  private withQueue<T>(name: string, fn: (q: Queue) => Promise<T>): Promise<T> {
    const known = this.queues.get(name);
    const run = known !== undefined ? fn(known) : this.queue(name).then(fn);
    if (!this.create) return run;
    return run.catch((err: unknown) => {
      if (!isDdmqError(err, 'QUEUE_MISSING')) throw err;
      this.queues.delete(name);
      this.layers.delete(name);
      return this.queue(name).then(fn);
    });
  }

  /** Writes a message into a queue (made if missing) as a new ready file; for dead letters and redrive. */
  async put(queue: string, msg: Message): Promise<string> {
    checkQueueName(queue);
    if (!this.queues.has(queue)) await this.createQueue(queue);
    return (await this.queue(queue)).put(msg);
  }

  /**
   * Moves dead letters back: each message of `deadQueue` (or only those with the given
   * ids, or the first `limit`) goes to the queue it came from (or `to`), with its requeue
   * counter reset. A target queue that does not exist is made only with `create`: `to` is
   * refused (QUEUE_MISSING) before anything moves, and a message whose own queue is gone
   * stays (counted in `skipped`). Ids that were asked for and not found are in `missing`.
   */
  async redrive(deadQueue: string, options: RedriveOptions = {}): Promise<RedriveResult> {
    if (options.to !== undefined) {
      checkQueueName(options.to);
      if (!this.create && !(await this.queueExists(options.to))) {
        throw new DdmqError('QUEUE_MISSING', `queue ${options.to} does not exist in ${this.root} (create it, or redrive with -f / { create: true })`, {
          path: join(this.root, options.to),
        });
      }
      await this.queue(options.to); // checks its folders (or makes it, with create) before anything moves
    }
    const dq = await this.queue(deadQueue);
    const wanted = options.ids ? new Set(options.ids) : undefined;
    const found = new Set<string>();
    let moved = 0;
    let skipped = 0;
    const listing = ReadyListing.of(listIfExists(dq.dir) ?? []);
    for (let name = listing.next(); name !== undefined; name = listing.next()) {
      if (options.limit !== undefined && moved >= options.limit) break;
      const id = parseReadyName(name)!.id;
      if (wanted && !wanted.has(id)) continue;
      const msg = dq.takeByName(name);
      if (msg === null) continue;
      found.add(id);
      const history = msg.extra.dead_letter as { from?: unknown } | undefined;
      const target = options.to ?? (typeof history?.from === 'string' && isQueueName(history.from) ? history.from : undefined);
      if (target === undefined || (options.to === undefined && !this.create && !(await this.queueExists(target)))) {
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

  /** Stops watching folders for waiting consumers, and writes the task records it holds. The broker stays usable. */
  close(): void {
    for (const q of this.queues.values()) q.close();
    this.recorder.flush();
  }

  // ---- task records -----------------------------------------------------------------

  /** Keeps a task record (QueueHost): buffered, written within a second (records.ts). */
  record(r: Omit<TaskRecord, 'host' | 'pid'>): void {
    this.recorder.add({
      queue: r.queue,
      id: r.id,
      host: HOST,
      pid: process.pid,
      start: r.start,
      end: r.end,
      runtime_ms: r.runtime_ms,
      outcome: r.outcome,
      action: r.action,
      exit_code: r.exit_code,
      signal: r.signal,
      attempt: r.attempt,
      error: r.error,
    });
  }

  /** Bounds a queue's task records (QueueHost; called by clean). A failure is a warning: cleaning goes on. */
  pruneRecords(queue: string, settings: Settings): void {
    try {
      const removed = pruneRecords(this.root, queue, {
        now: this.now(),
        maxAgeMs: settings.history_max_age * 1000,
        maxBytes: settings.history_max_bytes,
      });
      if (removed > 0) this.log('info', `removed ${removed} old task record files of ${queue}`);
    } catch (err) {
      if (!isDdmqError(err)) throw err;
      this.warn(new DdmqError(err.code, `task records of queue ${queue} not pruned: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
    }
  }

  /** Removes the presence files of killed workers (called by clean of the whole root). A failure is a warning. */
  private prunePresence(): void {
    try {
      const removed = prunePresence(this.root, this.now());
      if (removed > 0) this.log('info', `removed ${removed} presence files of workers gone for over an hour`);
    } catch (err) {
      if (!isDdmqError(err)) throw err;
      this.warn(new DdmqError(err.code, `worker presence files not pruned: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
    }
  }

  /**
   * The workers running on this root now, from their presence files (ROOT/.ddmq/workers),
   * with how long ago each last said so (`age_ms`, by this host's clock) and whether that
   * is recent enough to take it as alive (`active`: within PRESENCE_ACTIVE_MS). Workers of
   * queues with `history: false` keep no presence file.
   */
  async workers(): Promise<(WorkerPresence & { age_ms: number; active: boolean })[]> {
    const now = this.now();
    return readPresence(this.root).map((p) => {
      const age = Math.max(0, now - p.heartbeat);
      return { ...p, age_ms: age, active: age <= PRESENCE_ACTIVE_MS };
    });
  }

  /**
   * Starts a worker's presence file (see presence.ts), rewritten every 15 s and soon after
   * `changed()`, until `stop()`; a no-op when the queue keeps no history.
   */
  async announceWorker(queue: string, snapshot: () => PresenceSnapshot): Promise<{ changed(): void; stop(): void }> {
    const settings = await this.settings(queue);
    if (!settings.history) return { changed() {}, stop() {} };
    const beacon = new PresenceBeacon(this.root, snapshot, { now: () => this.now(), warn: (w) => this.warn(w), groupShared: settings.group_shared });
    beacon.start();
    return beacon;
  }

  /**
   * A worker lost a message's lease: its task ends without an ack or a nack, and only its
   * record says so (if the queue keeps records).
   */
  async recordLeaseLost(msg: Message, details: RecordDetails = {}): Promise<void> {
    const q = this.queues.get(msg.queue) ?? (await this.queue(msg.queue));
    if ((await q.settings()).history) q.record(msg, msg.filename, 'lease-lost', null, details);
  }

  /**
   * The task records of one queue, of a list of queues, or of every queue that has any
   * (deleted queues included), ending at or after `since` (epoch ms). In file order, not
   * sorted; a half-written last line is skipped. This process's own buffered records are
   * written first, so they are included.
   */
  async *records(queue?: string | string[], options: { since?: number } = {}): AsyncGenerator<TaskRecord, void, undefined> {
    this.recorder.flush();
    const names = queue === undefined ? recordQueues(this.root) : (typeof queue === 'string' ? [queue] : queue).map(checkQueueName);
    for (const name of names) yield* readQueueRecords(this.root, name, options.since ?? -Infinity);
  }

  /**
   * Follows the task records as they are written, for a live view: each `poll(queues)`
   * returns the records of those queues written since the last poll (the first: every
   * kept one), reading only what was appended (see RecordTail).
   */
  followRecords(): RecordTail {
    this.recorder.flush();
    return new RecordTail(this.root, () => this.now());
  }

  /**
   * What the farm did: per queue (and in total), counts by outcome over every kept record
   * and over the window since `since` (epoch ms; default an hour ago), throughput per
   * minute, runtime percentiles, the done rate and ETA, workers per host, the most common
   * errors, and the current counts. Every queue (also those that only have records left),
   * or the named ones. A queue that cannot be counted (a link in its place, a bad
   * ddmq.yaml) is in `problems`; its current counts are null.
   */
  async stats(queues?: string | string[], options: { since?: number } = {}): Promise<Stats & { problems: DdmqError[] }> {
    const { summarize } = await import('../format/stats.js'); // only stats needs it
    const now = this.now();
    const wanted = typeof queues === 'string' ? [queues] : queues;
    const current = new Map<string, CurrentCounts>();
    const problems: DdmqError[] = [];
    for (const c of await this.counts(wanted)) {
      if (c.error === undefined) current.set(c.queue, { ready: c.ready, delayed: c.delayed, in_flight: c.inFlight, expired: c.expired, corrupt: c.corrupt });
      // A deleted queue has only its records left (its current counts are null); a queue that
      // cannot be counted (a link in its place) is in `problems`, and its records are still summed up.
      else if (!isDdmqError(c.error, 'QUEUE_MISSING')) problems.push(c.error);
    }
    const names = wanted ?? [...new Set([...current.keys(), ...recordQueues(this.root)])].sort();
    const all: TaskRecord[] = [];
    for await (const r of this.records(names)) all.push(r);
    return { ...summarize(all, current, { now, since: options.since }), problems };
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
    const [queue, name] = this.target(target, filename);
    (this.queues.get(queue) ?? (await this.queue(queue))).ack(name, rec);
  }

  /** Negatively acknowledges: `nack(msg, options?)` or `nack(queue, filename, options?)`. */
  async nack(target: Message | string, filenameOrOptions?: string | NackOptions, options?: NackOptions): Promise<NackResult> {
    const filename = typeof filenameOrOptions === 'string' ? filenameOrOptions : undefined;
    const opts = typeof filenameOrOptions === 'object' ? filenameOrOptions : options;
    const [queue, name] = this.target(target, filename);
    return (await this.queue(queue)).nack(name, opts, {});
  }

  /**
   * Gives a message back untried: `release(msg)` or `release(queue, filename)`. It is ready
   * again at once, its requeue counter unchanged, whatever its requeue settings say.
   */
  async release(target: Message | string, filenameOrDetails?: string | RecordDetails, details?: RecordDetails): Promise<NackResult> {
    const filename = typeof filenameOrDetails === 'string' ? filenameOrDetails : undefined;
    const rec = (typeof filenameOrDetails === 'object' ? filenameOrDetails : details) ?? {};
    const [queue, name] = this.target(target, filename);
    return (await this.queue(queue)).release(name, rec);
  }

  /**
   * Renews a lease to `seconds` from now: `extend(msg, seconds)` (msg.filename is updated)
   * or `extend(queue, filename, seconds)`. Returns the new in-flight file name.
   */
  async extend(target: Message | string, filenameOrSeconds: string | number, seconds?: number): Promise<string> {
    if (typeof target === 'string') {
      return (await this.queue(target)).extend(String(filenameOrSeconds), seconds ?? NaN);
    }
    return (await this.queue(target.queue)).extend(target, Number(filenameOrSeconds));
  }

  /** Whether a consumed message is still in flight under its file name (its lease was not lost, it was not acked). */
  async isInFlight(msg: Message): Promise<boolean> {
    return (await this.queue(msg.queue)).isInFlight(msg.filename);
  }

  /** Deletes one message, ready or in flight, by file name; returns its path. */
  async deleteMessage(queue: string, filename: string): Promise<string> {
    return (await this.queue(queue)).deleteMessage(filename);
  }

  /** Deletes every message of a queue, ready, delayed and in flight. */
  async purge(queue: string): Promise<PurgeResult> {
    return (await this.queue(queue)).purge();
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
    if (typeof queue === 'string') return [await (await this.queue(queue)).clean(options)];
    if (queue === undefined) this.prunePresence();
    const results = await this.eachQueue(
      queue,
      (q) => q.clean(options),
      (name, error) => ({ queue: name, requeued: 0, dropped: 0, deadLettered: 0, corrupt: 0, tempsRemoved: 0, error }),
    );
    if (queue === undefined) await this.pruneRecordsOfDeletedQueues();
    return results;
  }

  /**
   * Bounds the task records of queues that no longer exist (a records folder with a queue's
   * name, and no queue of that name), by the root's history_max_age and history_max_bytes
   * (the defaults unless the root's ddmq.yaml sets them), and removes their folders once
   * empty. A name where a queue would be that is not usable as one (a link) is left alone:
   * clean reports it. Failures are warnings: cleaning goes on.
   */
  private async pruneRecordsOfDeletedQueues(): Promise<void> {
    try {
      const names = recordQueues(this.root).filter((name) => {
        try {
          return this.queueFolderState(name) === 'none';
        } catch (err) {
          if (isDdmqError(err)) return false;
          throw err;
        }
      });
      if (names.length === 0) return;
      const settings = await this.settings();
      for (const name of names) {
        this.pruneRecords(name, settings);
        try {
          if (removeRecordsFolderIfEmpty(this.root, name)) this.log('info', `removed the empty task records folder of deleted queue ${name}`);
        } catch (err) {
          if (!isDdmqError(err)) throw err;
          this.warn(new DdmqError(err.code, `task records folder of queue ${name} not removed: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
        }
      }
    } catch (err) {
      if (!isDdmqError(err) || err.code === 'ROOT_MISSING' || err.code === 'ROOT_UNINITIALISED') throw err;
      this.warn(new DdmqError(err.code, `task records of deleted queues not pruned: ${err.message}`, { path: err.path, osCode: err.osCode, cause: err }));
    }
  }

  /**
   * Runs fn on the named queues (each name checked first), or on every queue; a queue that
   * fails gets `failed(name, error)` in its place.
   */
  private async eachQueue<T>(
    names: string[] | undefined,
    fn: (q: Queue) => T | Promise<T>,
    failed: (name: string, error: DdmqError) => T,
  ): Promise<T[]> {
    const entries: { name: string; problem?: DdmqError }[] = names === undefined ? this.queueEntries() : names.map((name) => ({ name: checkQueueName(name) }));
    const out: T[] = [];
    for (const entry of entries) {
      if (entry.problem) {
        out.push(failed(entry.name, entry.problem));
        continue;
      }
      try {
        out.push(await fn(await this.queue(entry.name)));
      } catch (err) {
        if (!isDdmqError(err) || err.code === 'ROOT_MISSING' || err.code === 'ROOT_UNINITIALISED') throw err;
        out.push(failed(entry.name, err));
      }
    }
    return out;
  }

  /** Lists a queue's messages without taking them (see Queue.peek). */
  async peek(queue: string, options?: PeekOptions): Promise<Peeked[]> {
    return (await this.queue(queue)).peek(options);
  }

  /**
   * Ready, delayed, in-flight, expired and corrupt counts of one queue, of a list of
   * queues, or of every queue. Over a list or every queue, one that cannot be read does
   * not stop the others: its result carries the `error`, with zero counts.
   */
  async counts(queue?: string | string[]): Promise<QueueCounts[]> {
    if (typeof queue === 'string') return [await (await this.queue(queue)).counts()];
    return this.eachQueue(
      queue,
      (q) => q.counts(),
      (name, error) => ({ queue: name, ready: 0, delayed: 0, inFlight: 0, expired: 0, corrupt: 0, nextDue: null, error }),
    );
  }

  private target(target: Message | string, filename: string | undefined): [string, string | Message] {
    if (typeof target === 'string') {
      if (filename === undefined) throw new DdmqError('INVALID_ARGUMENT', 'a message file name is needed with a queue name');
      return [target, filename];
    }
    return [target.queue, target];
  }
}

function isOurs(name: string): boolean {
  return (
    isMessageName(name) ||
    name === SETTINGS_FILE ||
    name === `${SETTINGS_FILE}.intermediate` ||
    name.startsWith(TEMP_PREFIX) ||
    isNfsSillyRename(name)
  );
}

/** A file of the queue's folders that ddmq wrote: a message (links and FIFOs under message names included, as they are moved aside), a temporary file, a settings file. A folder is never ours. */
function isOursEntry(entry: fs.Dirent): boolean {
  return !entry.isDirectory() && isOurs(entry.name);
}

function listEntries(dir: string): fs.Dirent[] {
  try {
    return retryStale(() => fs.readdirSync(dir, { withFileTypes: true }));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw ioError(err, 'list', dir);
  }
}

/**
 * A queue's own dead_letter may not name itself: its dead letters would be dropped. (One
 * set in the root's file may name a queue, which then drops its own: it is the last stop.)
 */
function checkNotOwnDeadLetter(queue: string, deadLetter: unknown): void {
  if (deadLetter === queue) {
    throw new DdmqError(
      'INVALID_SETTING',
      `invalid setting "dead_letter" for queue ${queue}: a queue cannot be its own dead-letter queue (its dead letters would be dropped)`,
    );
  }
}

/** What the root is, following a link there (the root may be one). */
function rootKind(root: string): 'dir' | 'other' | null {
  try {
    return retryStale(() => fs.statSync(root)).isDirectory() ? 'dir' : 'other';
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') return 'other';
    throw ioError(err, 'open root folder', root);
  }
}
