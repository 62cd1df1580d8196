/**
 * Looking into a queue without consuming: peek, counts; and removing by hand: purge,
 * deleteMessage. All of them walk the folders pinned for the call (folders.ts).
 */
import { join } from 'node:path';
import { DdmqError } from '../format/errors.js';
import { decodeMessage, type Message } from '../format/message.js';
import { ReadyListing } from '../format/listing.js';
import { checkMessageFileName, isMessageName, parseInFlightName, parseReadyName } from '../format/names.js';
import type { ClaimCursor } from './cursor.js';
import { queueMissing } from './folders.js';
import { listIfExists, readRegularFile, shownPath, unlinkIfExists } from './fsx.js';
import type { Clock, Reporter } from './host.js';
import type { QueueDirs } from './queue-dirs.js';
import { invalid } from './queue-errors.js';
import type { QueueSettings } from './queue-settings.js';

/** Where a message is: ready to be consumed, in flight (consumed, leased), or delayed (not due yet). */
export type MessageState = 'ready' | 'in-flight' | 'delayed';

/** What `Broker.purge` deleted: how many messages of each state. */
export interface PurgeResult {
  /** The queue purged. */
  queue: string;
  /** Ready messages deleted. */
  ready: number;
  /** Delayed messages deleted. */
  delayed: number;
  /** In-flight messages deleted. */
  inFlight: number;
}

/** Options of `Broker.peek`. */
export interface PeekOptions {
  /**
   * Which messages.
   * @default ['ready', 'in-flight', 'delayed']
   */
  states?: MessageState[];
  /**
   * At most this many.
   * @default 100
   */
  limit?: number;
  /**
   * Only messages whose text (the payload as a string, see `Message.text`) contains this.
   * @default every message
   */
  match?: string;
}

/**
 * A message as `Broker.peek` lists it, without taking it.
 * @typeParam T - the payload's type, as the caller says (not checked at run time)
 */
export interface Peeked<T = unknown> {
  /** Where it is. */
  state: MessageState;
  /** Its file's name in that state's folder. */
  filename: string;
  /** Epoch second the lease runs out (in flight) or the message is due (delayed). */
  until: number | null;
  /** null if the file could not be read as a message (then `error` says why). */
  message: Message<T> | null;
  /** Why the file could not be read, when `message` is null. */
  error?: string;
}

/** How many messages a queue holds, by state, as `Broker.counts` gives them. */
export interface QueueCounts {
  /** The queue's name. */
  queue: string;
  /** Ready to be consumed now. */
  ready: number;
  /** Published with a delay that has not passed yet. */
  delayed: number;
  /** Consumed and not yet acked, nacked or released (the expired ones included). */
  inFlight: number;
  /** In flight with a lease that has run out (requeued by the next clean). */
  expired: number;
  /** Files moved aside to corrupt/ because they could not be read as messages. */
  corrupt: number;
  /** The epoch second the first delayed message is due; null if none is delayed. */
  nextDue: number | null;
  /** Counting every queue: set when this one could not be read (the counts are then 0). */
  error?: DdmqError;
}

export class Inspector {
  constructor(
    private readonly name: string,
    private readonly dirs: QueueDirs,
    private readonly cursor: ClaimCursor,
    private readonly settings: QueueSettings,
    private readonly clock: Clock,
    private readonly report: Reporter,
  ) {}

  /**
   * Lists messages without taking them: ready ones in serving order, in-flight ones by
   * lease expiry, delayed ones by due time. Nothing is renamed or changed.
   */
  peek(options: PeekOptions = {}): Peeked[] {
    const states = options.states ?? ['ready', 'in-flight', 'delayed'];
    const limit = options.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1) throw invalid('limit', limit, 'a whole number, at least 1');
    return this.dirs.folders.withPinned((pinned) => {
      if (pinned === null) throw queueMissing(this.name, this.dirs.dir);
      const p = pinned.paths;
      const out: Peeked[] = [];
      const add = (state: MessageState, dir: string, name: string, until: number | null): boolean => {
        let message: Message | null = null;
        let error: string | undefined;
        try {
          const content = readRegularFile(join(dir, name));
          if (content === null) return false; // RACE: taken meanwhile
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
    const result = this.dirs.folders.withPinned((pinned) => {
      if (pinned === null) throw queueMissing(this.name, this.dirs.dir);
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
    this.cursor.forget();
    this.report.log('info', `purged ${this.name}: ${result.ready} ready, ${result.delayed} delayed, ${result.inFlight} in flight`);
    return result;
  }

  /**
   * Deletes one message by its file name: a ready one, or one in flight or delayed (their
   * names have the same shape). Returns its path.
   */
  deleteMessage(name: string): string {
    const kind = checkMessageFileName(name, ['ready', 'in-flight']);
    this.dirs.check(false);
    const p = this.dirs.paths;
    const paths = kind === 'ready' ? [join(p.dir, name)] : [join(p.work, name), join(p.delayed, name)];
    for (const path of paths) if (unlinkIfExists(path)) return shownPath(path);
    const where = kind === 'ready' ? '' : ' (in flight or delayed)';
    throw new DdmqError('MESSAGE_NOT_FOUND', `no message ${name}${where} in queue ${this.name}`, { path: shownPath(paths[0]!) });
  }

  /** `expired`: in flight and past expiry plus `expiry_grace`, so the next clean requeues it. */
  async counts(): Promise<QueueCounts> {
    const due = Math.floor(this.clock.now() / 1000) - (await this.settings.get()).expiry_grace;
    return this.dirs.folders.withPinned((pinned) => {
      if (pinned === null) throw queueMissing(this.name, this.dirs.dir);
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
}
