/**
 * The second half of nack, release and expiry: a claimed in-flight file is replaced by a
 * new ready (or delayed) file, written first, so that a crash in between duplicates but
 * never loses it; or by a dead letter, handed to the dead-letter sink; or it is dropped.
 */
import { join } from 'node:path';
import { DdmqError } from '../format/errors.js';
import { Message } from '../format/message.js';
import { readyFileName } from '../format/names.js';
import { queueNumbers } from '../format/queue-number.js';
import type { Settings } from '../format/settings.js';
import type { QueuePaths } from './folders.js';
import { unlinkIfExists } from './fsx.js';
import type { Clock, DeadLetterSink, Reporter } from './host.js';
import type { QueueDirs } from './queue-dirs.js';
import type { MessageWriter } from './writer.js';

/** What became of a message given back by `nack` (or by `release`, or by an expired lease). */
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

/**
 * What became of a message given back by `release`: it is always requeued, ready at once
 * (`action` is `requeued`, `filename` its new ready file name).
 */
export type ReleaseResult = NackResult;

export type RequeueReason = 'failed' | 'expired' | 'forced' | 'released';

/** Seconds a message that failed `failures` times before waits before it is ready again. */
export function retryDelay(settings: Settings, failures: number): number {
  if (settings.retry_delay === 0) return 0;
  const delay = settings.retry_delay * settings.retry_backoff ** Math.min(failures, 1000);
  return Math.min(settings.retry_delay_max, Math.ceil(delay));
}

export class Requeuer {
  /** Whether it was said once that this queue, the root's dead_letter, drops its own dead letters. */
  private warnedOwnDeadLetter = false;

  constructor(
    private readonly name: string,
    /** The root, for the path shown in a warning about its settings. */
    private readonly root: string,
    private readonly dirs: QueueDirs,
    private readonly writer: MessageWriter,
    private readonly deadLetters: DeadLetterSink,
    private readonly clock: Clock,
    private readonly report: Reporter,
  ) {}

  /**
   * Replaces the claimed in-flight file `claimed` of `msg`, by why it is requeued:
   *
   * - failed (a nack): requeued after the retry backoff, if its requeue settings and its
   *   limit allow; otherwise dead-lettered (with a dead_letter queue) or dropped;
   * - expired (a dead consumer's lease): the same, but ready again at once;
   * - forced (nack with requeue: true): requeued at once, whatever the settings say;
   * - released (a worker stopping): requeued at once, not counted as an attempt.
   */
  async requeueOrDrop(msg: Message, claimed: string, why: RequeueReason, settings: Settings, p: QueuePaths = this.dirs.paths): Promise<NackResult> {
    const claimedPath = join(p.work, claimed);
    const limit = msg.requeueLimit ?? settings.requeue_limit;
    const withinLimit = limit === null || msg.requeueCounter < limit;
    const wanted = (msg.requeue ?? settings.requeue) !== false;
    if (why !== 'forced' && why !== 'released' && !(wanted && withinLimit)) {
      const reason = withinLimit ? 'requeue is off' : 'requeue limit reached';
      if (settings.dead_letter !== null && settings.dead_letter !== this.name) {
        return this.deadLetter(msg, claimed, claimedPath, reason, settings.dead_letter, p);
      }
      if (settings.dead_letter === this.name && !this.warnedOwnDeadLetter) {
        // Only the root's file can say so (a queue's own may not): this queue is the last stop.
        this.warnedOwnDeadLetter = true;
        this.report.warn(
          new DdmqError(
            'INVALID_SETTING',
            `queue ${this.name} is the root's dead_letter queue, so its own dead letters are dropped ` +
              `(${this.name}/${claimed}: ${reason}); set its own dead_letter to another queue to keep them`,
            { path: join(this.root, 'ddmq.yaml') },
          ),
        );
      }
      unlinkIfExists(claimedPath);
      this.report.log('info', `dropped ${this.name}/${claimed} (${reason})`);
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
    const due = delay > 0 ? Math.ceil(this.clock.now() / 1000 + delay) : undefined;
    if (this.writer.syncs(settings) && p === this.dirs.paths) {
      // The new file is on disk (its syncs shared with other writers) before the old one goes.
      again.due = due;
      // claimedPath may go through pinned folders, which the write may pin again (making
      // delayed/): they stay open until the old file is gone.
      const release = this.dirs.hold();
      try {
        await this.writer.writeDurably([again], settings);
        unlinkIfExists(claimedPath);
      } finally {
        release();
      }
      this.report.log('info', `requeued ${this.name}/${claimed} as ${again.filename}${due === undefined ? '' : `, ready in ${delay} s`}`);
      return due === undefined ? { action: 'requeued', filename: again.filename } : { action: 'requeued', filename: again.filename, due };
    }
    if (due !== undefined) {
      // Waits out its backoff in delayed/, out of the way of the other messages.
      this.writer.writeDelayed(again, settings, due, p);
      unlinkIfExists(claimedPath);
      this.report.log('info', `requeued ${this.name}/${claimed} as ${again.filename}, ready in ${delay} s`);
      return { action: 'requeued', filename: again.filename, due };
    }
    this.writer.write(again, settings, p.dir);
    unlinkIfExists(claimedPath);
    this.report.log('info', `requeued ${this.name}/${claimed} as ${again.filename}`);
    return { action: 'requeued', filename: again.filename };
  }

  /** To the dead-letter queue with its history; written there first. */
  private async deadLetter(msg: Message, claimed: string, claimedPath: string, reason: string, queue: string, p: QueuePaths): Promise<NackResult> {
    const dead = new Message({
      ...msg,
      extra: {
        ...msg.extra,
        dead_letter: {
          from: this.name,
          reason,
          requeue_counter: msg.requeueCounter,
          last_error: msg.extra.last_error ?? null,
          at: Math.floor(this.clock.now() / 1000),
        },
      },
    });
    // claimedPath may go through pinned folders: they stay open across the await.
    const release = p === this.dirs.paths ? this.dirs.hold() : () => {};
    try {
      const filename = await this.deadLetters.put(queue, dead);
      unlinkIfExists(claimedPath);
      this.report.log('info', `dead-lettered ${this.name}/${claimed} to ${queue}/${filename}`);
      return { action: 'dead-lettered', queue, filename };
    } finally {
      release();
    }
  }
}
