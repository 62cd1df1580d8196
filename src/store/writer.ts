/**
 * Writing a queue's messages: new ones (publish, publishMany), copies from another queue
 * (dead letters, redrive), and requeued ones. Each is written whole under a temporary name
 * and renamed into place; with fsync, many are staged and committed with their syncs
 * shared (durable.ts). A message with a due time goes into delayed/.
 */
import { DdmqError, isDdmqError } from '../format/errors.js';
import { encodeMessage, isCount, Message, MESSAGE_KEYS, type Requeue } from '../format/message.js';
import { inFlightFileName, newMessageId, readyFileName } from '../format/names.js';
import { queueNumbers } from '../format/queue-number.js';
import { checkSetting, MAX_SECONDS, type Settings } from '../format/settings.js';
import type { ClaimCursor } from './cursor.js';
import { commitFiles, type StagedFile, stageFile } from './durable.js';
import type { QueuePaths } from './folders.js';
import { exists } from './fsx.js';
import { writeFileAtomic } from './fs-write.js';
import type { Clock, Reporter } from './host.js';
import type { QueueDirs } from './queue-dirs.js';
import { invalid } from './queue-errors.js';
import type { QueueSettings } from './queue-settings.js';

/** With fsync, publishMany commits this many messages at a time: enough for the disk to take their syncs together, few enough open files. */
const DURABLE_GROUP = 512;

/** Options of `Broker.publish` and `Broker.publishMany`. */
export interface PublishOptions {
  /**
   * Lower is served first: a whole number, 0 or more.
   * @default the queue's `priority` setting
   */
  priority?: number;
  /**
   * This message's lease in seconds: how long a consumer may hold it before it is
   * requeued (written as the file's `timeout`).
   * @default the queue's `message_timeout` setting
   */
  lease?: number | null;
  /**
   * Requeue on nack and expiry (false: dead-letter or drop).
   * @default the queue's `requeue` setting
   */
  requeue?: boolean;
  /**
   * Priority when requeued; implies requeue.
   * @default the queue's `requeue_prio` setting
   */
  requeuePrio?: number;
  /**
   * How many requeues are allowed (null: unlimited).
   * @default the queue's `requeue_limit` setting
   */
  requeueLimit?: number | null;
  /**
   * Extra keys stored in the message file (ignored by the original tool); they may not
   * be one of the file's own keys.
   * @default none
   */
  extra?: Record<string, unknown>;
  /**
   * Seconds before the message may be consumed: it waits in delayed/ until then.
   * @default 0
   */
  delay?: number;
}

export class MessageWriter {
  constructor(
    private readonly name: string,
    private readonly dirs: QueueDirs,
    private readonly cursor: ClaimCursor,
    private readonly settings: QueueSettings,
    /** The broker's fsync option, over the setting. */
    private readonly fsync: boolean | undefined,
    private readonly clock: Clock,
    private readonly report: Reporter,
  ) {}

  /** Whether writes are synced: the broker's option, else the queue's setting. */
  syncs(settings: Settings): boolean {
    return this.fsync ?? settings.fsync;
  }

  async publish(body: unknown, options: PublishOptions = {}): Promise<Message> {
    this.dirs.check(false);
    const now = this.settings.now();
    const settings = now instanceof Promise ? await now : now;
    checkPublishOptions(options);
    if (this.syncs(settings)) {
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
    this.dirs.check(false);
    const settings = await this.settings.get();
    checkPublishOptions(options);
    let written = 0;
    if (this.syncs(settings)) {
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
    this.write(msg, settings, this.dirs.paths.dir, msg.filename);
    if (this.report.logging) this.report.log('debug', `published ${this.name}/${msg.filename}`);
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
      lease: options.lease ?? null,
      requeue,
      requeueCounter: 0,
      requeueLimit: options.requeueLimit ?? null,
      extra: copyExtra(options.extra),
    });
    msg.filename = readyFileName(msg.priority, msg.queueNumber, msg.id);
    if (options.delay !== undefined && options.delay > 0) msg.due = Math.ceil(this.clock.now() / 1000 + options.delay);
    return msg;
  }

  /** Writes a message (from another queue) into this one as a new ready file; returns its name. */
  async put(msg: Message): Promise<string> {
    const settings = await this.settings.get();
    const copy = new Message({ ...msg, queue: this.name, queueNumber: queueNumbers.next(), filename: '', extra: { ...msg.extra } });
    copy.filename = readyFileName(copy.priority, copy.queueNumber, copy.id);
    copy.due = undefined;
    if (this.syncs(settings)) await this.writeDurably([copy], settings);
    else this.write(copy, settings);
    return copy.filename;
  }

  /**
   * Writes messages with fsync, their syncs shared (durable.ts): each goes into the queue,
   * or into delayed/ if it has a due time. Returns once all of them are on disk. On a
   * failure the messages before the one that failed are written (and synced), the rest not.
   */
  async writeDurably(msgs: readonly Message[], settings: Settings): Promise<void> {
    if (msgs.length === 0) return;
    // The staged files' folders stay open across the syncs: the pins in use now, and any
    // pinned anew while staging (making delayed/, or after a stale pin).
    const releases = [this.dirs.hold()];
    let held = this.dirs.current;
    const staged: StagedFile[] = [];
    try {
      // A message that cannot be written stops the group there; those before it are
      // committed all the same, as they would be published without fsync.
      for (const msg of msgs) {
        staged.push(this.stage(msg, settings));
        if (this.dirs.current !== held) {
          held = this.dirs.current;
          releases.push(this.dirs.hold());
        }
      }
    } finally {
      try {
        await commitFiles(staged);
      } finally {
        for (const release of releases) release();
        for (const msg of msgs.slice(0, staged.length)) {
          if (msg.due !== undefined) this.cursor.delayedUntil(msg.due);
          else this.cursor.wrote(msg.filename);
        }
      }
    }
    if (this.report.logging) for (const msg of msgs) this.report.log('debug', `published ${this.name}/${msg.filename} (synced)`);
  }

  /** The first half of a durable write: the message in a temporary file, beside its name. */
  private stage(msg: Message, settings: Settings): StagedFile {
    const data = encodeForWrite(msg);
    if (msg.due === undefined) {
      try {
        return stageFile(this.dirs.paths.dir, msg.filename, data, settings.group_shared);
      } catch (err) {
        if (this.dirs.stalePin(err)) return stageFile(this.dirs.paths.dir, msg.filename, data, settings.group_shared);
        throw this.dirs.missingOr(err);
      }
    }
    const name = inFlightFileName(msg.due, msg.filename, '');
    for (let attempt = 1; ; attempt++) {
      this.settings.groupShared = settings.group_shared;
      this.dirs.ensureSubfolder('delayed');
      try {
        return stageFile(this.dirs.paths.delayed, name, data, settings.group_shared);
      } catch (err) {
        // RACE: a cleaner removed delayed/ (found empty) between our mkdir and our write (see writeDelayed).
        if (!isDdmqError(err, 'IO') || err.osCode !== 'ENOENT' || attempt >= 5 || !exists(this.dirs.dir)) throw err;
        this.dirs.stalePin(err);
      }
    }
  }

  /**
   * Writes a message into delayed/, named by the second it is due; moved into the queue when
   * it is. `given`: folders pinned for one call (clean's), else the queue's own.
   */
  writeDelayed(msg: Message, settings: Settings, due: number, given?: QueuePaths): void {
    const name = inFlightFileName(due, msg.filename, '');
    if (given !== undefined && given !== this.dirs.paths) {
      // delayed/ pinned for this one write, made first through the pinned queue folder.
      const delayed = this.dirs.folders.pinSubfolder('delayed', settings.group_shared);
      try {
        this.write(msg, settings, delayed.at, name);
      } finally {
        delayed.close();
      }
    } else {
      for (let attempt = 1; ; attempt++) {
        this.settings.groupShared = settings.group_shared;
        this.dirs.ensureSubfolder('delayed');
        try {
          this.write(msg, settings, this.dirs.paths.delayed, name);
          break;
        } catch (err) {
          // RACE: a cleaner removed delayed/ (found empty) between our mkdir and our write, or
          // removed the delayed/ we hold pinned: look again (and pin again) before a retry.
          if (!isDdmqError(err, 'IO') || err.osCode !== 'ENOENT' || attempt >= 5 || !exists(this.dirs.dir)) throw err;
          this.dirs.stalePin(err);
        }
      }
    }
    this.cursor.delayedUntil(due);
  }

  write(msg: Message, settings: Settings, dir = this.dirs.paths.dir, name = msg.filename): void {
    const data = encodeForWrite(msg);
    const options = { fsync: this.syncs(settings), groupShared: settings.group_shared };
    try {
      writeFileAtomic(dir, name, data, options);
    } catch (err) {
      // RACE: the queue was deleted and made again by another client under our pinned folders: pin again, once.
      if (dir === this.dirs.paths.dir && this.dirs.stalePin(err)) writeFileAtomic(this.dirs.paths.dir, name, data, options);
      else throw this.dirs.missingOr(err);
    }
    // A message this process writes ahead of its own next cached name must not wait for
    // the next listing to be served.
    this.cursor.wrote(msg.filename);
  }
}

function encodeForWrite(msg: Message): string {
  try {
    const data = encodeMessage(msg);
    const kind = typeof msg.message;
    if (kind === 'undefined' || kind === 'function' || kind === 'symbol') throw new Error(`a ${kind} is not a JSON value`);
    return data;
  } catch (err) {
    throw new DdmqError('INVALID_ARGUMENT', `the message cannot be written as JSON: ${(err as Error).message}`);
  }
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
  if (o.lease !== undefined && o.lease !== null) check('message_timeout', o.lease, 'lease');
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
