/**
 * Ending a consumed message's lease: ack (deleted), nack (requeued, dead-lettered or
 * dropped), release (given back untried), extend (a later expiry); each leaves a task
 * record when the queue keeps history.
 */
import { DdmqError } from '../format/errors.js';
import { decodeMessage, type Message } from '../format/message.js';
import { checkMessageFileName, parseInFlightName } from '../format/names.js';
import { MAX_ERROR_CHARS, type Outcome, type RecordAction, type RecordDetails } from '../format/records.js';
import { MAX_SECONDS } from '../format/settings.js';
import { type Claimer, REQUEUE_CLAIM_SECONDS } from './claims.js';
import { queueMissing } from './folders.js';
import { entryKind, exists, readRegularFile, unlinkIfExists } from './fsx.js';
import type { Clock, RecordSink, Reporter } from './host.js';
import type { QueueDirs } from './queue-dirs.js';
import { invalid, notInFlight } from './queue-errors.js';
import type { QueueSettings } from './queue-settings.js';
import type { NackResult, Requeuer } from './requeue.js';

/** Options of `Broker.nack`. */
export interface NackOptions {
  /**
   * true: requeue at once, whatever the settings and limit say; false: drop.
   * @default as the queue's settings and the message's limit say (requeue after the
   * retry backoff, else dead-letter or drop)
   */
  requeue?: boolean;
  /**
   * Why it failed: kept with the message as "last_error" (and in its dead letter, and its task record).
   * @default none
   */
  error?: string;
  /**
   * For the task record: the task's exit code, when the caller knows it.
   * @default null
   */
  exitCode?: number | null;
  /**
   * For the task record: the signal that ended the task (`SIGTERM`), when the caller knows it.
   * @default null
   */
  signal?: string | null;
}

export class Settler {
  constructor(
    private readonly name: string,
    private readonly dirs: QueueDirs,
    private readonly claimer: Claimer,
    private readonly requeuer: Requeuer,
    private readonly settings: QueueSettings,
    private readonly records: RecordSink,
    private readonly clock: Clock,
    private readonly report: Reporter,
  ) {}

  /**
   * Deletes an in-flight message. NOT_IN_FLIGHT if its lease was lost. With `rec`, a task
   * record is kept (the broker's calls; redrive's own acks of dead letters are not tasks).
   */
  ack(target: Message | string, rec?: RecordDetails): void {
    this.dirs.check(false);
    const name = this.inFlightNameOf(target);
    // Given only a name (a one-shot `ddmq ack`), the file is read for its attempt and id.
    const known = rec !== undefined && typeof target === 'string' && this.settings.recording() ? this.peekInFlight(name) : undefined;
    let gone: boolean;
    try {
      gone = unlinkIfExists(this.dirs.workSlash + name);
    } catch (err) {
      throw this.dirs.missingOr(err);
    }
    // RACE: the lease ran out and a cleaner (or another consumer after it) took the file first.
    if (!gone) throw exists(this.dirs.dir) ? notInFlight(this.name, name) : queueMissing(this.name, this.dirs.dir);
    if (this.report.logging) this.report.log('debug', `acked ${this.name}/${name}`);
    if (rec !== undefined && this.settings.recording()) this.record(known ?? target, name, 'done', 'acked', rec);
  }

  /** An in-flight message read without taking it, for its record; undefined if it cannot be read. */
  private peekInFlight(name: string): Message | undefined {
    try {
      const content = readRegularFile(this.dirs.workSlash + name);
      return content === null ? undefined : decodeMessage(content, { queue: this.name, file: parseInFlightName(name)!, path: this.dirs.workSlash + name });
    } catch {
      return undefined; // the record then has no attempt; the ack goes on
    }
  }

  /**
   * Keeps the record of a finished task. From a Message it has the attempt and, if this
   * process consumed it, the start; from a bare in-flight name only the id.
   */
  record(target: Message | string, name: string, outcome: Outcome, action: RecordAction, rec: RecordDetails): void {
    const end = this.clock.now();
    const msg = typeof target === 'string' ? undefined : target;
    const start = msg?.consumedAt ?? null;
    const lastError = outcome === 'done' ? null : (rec.error ?? (typeof msg?.extra.last_error === 'string' ? msg.extra.last_error : null));
    try {
      this.records.record({
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
      this.report.warn(new DdmqError('IO', `task record of ${this.name}/${name} not kept: ${(err as Error).message}`, { cause: err }));
    }
  }

  /**
   * A failed message: requeued (after the retry backoff), dead-lettered or dropped, by the
   * options, the message and the settings. `requeue: true` requeues at once whatever they
   * say; `requeue: false` drops.
   */
  async nack(target: Message | string, options: NackOptions = {}, rec?: RecordDetails): Promise<NackResult> {
    this.dirs.check(false);
    const name = this.inFlightNameOf(target);
    const details: RecordDetails | undefined = rec && { exitCode: options.exitCode, signal: options.signal, error: options.error, ...rec };
    if (options.requeue === false) {
      const known = details !== undefined && typeof target === 'string' && this.settings.recording() ? this.peekInFlight(name) : undefined;
      if (!unlinkIfExists(this.dirs.workSlash + name)) throw notInFlight(this.name, name);
      if (details !== undefined && this.settings.recording()) this.record(known ?? target, name, 'failed', 'dropped', details);
      return { action: 'dropped' };
    }
    const { msg, claimed } = this.claimForRequeue(target, name);
    if (options.error !== undefined) msg.extra = { ...msg.extra, last_error: String(options.error).slice(0, MAX_ERROR_CHARS) };
    const result = await this.requeuer.requeueOrDrop(msg, claimed, options.requeue === true ? 'forced' : 'failed', await this.settings.get());
    if (details !== undefined && this.settings.recording()) this.record(msg, name, 'failed', result.action, details);
    return result;
  }

  /**
   * Gives a message back untried: it is ready again at once (at `requeue_prio`), its
   * requeue counter unchanged, whatever its requeue settings say. For a worker that stops
   * before the message's task could finish.
   */
  async release(target: Message | string, rec?: RecordDetails): Promise<NackResult> {
    this.dirs.check(false);
    const name = this.inFlightNameOf(target);
    const { msg, claimed } = this.claimForRequeue(target, name);
    const result = await this.requeuer.requeueOrDrop(msg, claimed, 'released', await this.settings.get());
    if (rec !== undefined && this.settings.recording()) this.record(msg, name, 'released', result.action, rec);
    return result;
  }

  /** Claims an in-flight file for a requeue (so no cleaner takes it meanwhile) and reads it if need be. */
  private claimForRequeue(target: Message | string, name: string): { msg: Message; claimed: string } {
    const claimed = this.claimer.claimInFlight(parseInFlightName(name)!, REQUEUE_CLAIM_SECONDS);
    if (claimed === null) throw notInFlight(this.name, name);
    if (typeof target !== 'string') return { msg: target, claimed };
    const msg = this.claimer.readClaimed(claimed);
    if (msg === null) throw new DdmqError('CORRUPT_MESSAGE', `message ${this.name}/${name} could not be read`);
    return { msg, claimed };
  }

  /** Whether an in-flight file of this name is there (a look-up, not a claim). */
  isInFlight(name: string): boolean {
    checkMessageFileName(name, ['in-flight']);
    return entryKind(this.dirs.workSlash + name) !== null;
  }

  /** Renews a lease: the in-flight file is renamed to a later expiry. Returns its new name. */
  extend(target: Message | string, seconds: number): string {
    if (!Number.isSafeInteger(seconds) || seconds < 1 || seconds > MAX_SECONDS) {
      throw invalid('seconds', seconds, `a whole number from 1 to ${MAX_SECONDS} (ten years)`);
    }
    this.dirs.check(false);
    const name = this.inFlightNameOf(target);
    const renamed = this.claimer.claimInFlight(parseInFlightName(name)!, seconds);
    if (renamed === null) throw notInFlight(this.name, name);
    if (typeof target !== 'string') target.filename = renamed;
    this.report.log('debug', `extended ${this.name}/${name} to ${renamed}`);
    return renamed;
  }

  private inFlightNameOf(target: Message | string): string {
    const name = typeof target === 'string' ? target : target.filename;
    checkMessageFileName(name, ['in-flight']);
    return name;
  }
}
