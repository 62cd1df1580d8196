/**
 * Taking a queue's files. Every claim (consume, a cleaner or nack taking an in-flight
 * file, a lease extension) is one rename to a name that carries a fresh random token, so
 * no two claimers can choose the same target; of two racing renames of one file exactly
 * one finds it. A claimed file is read after it is renamed: one that does not parse is
 * put back if it may still be being written, and otherwise moved aside to corrupt/.
 */
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { DdmqError, isDdmqError } from '../format/errors.js';
import { decodeMessage, type Message } from '../format/message.js';
import { checkMessageFileName, type InFlightName, inFlightFileName, newClaimToken, parseInFlightName, readyNameOf } from '../format/names.js';
import type { ClaimCursor } from './cursor.js';
import type { QueuePaths } from './folders.js';
import { claimRename, errnoOf, exists, ioError, readRegularFile, retryStale } from './fsx.js';
import { ensureDir } from './fs-write.js';
import type { Clock, Reporter } from './host.js';
import type { QueueDirs } from './queue-dirs.js';
import type { QueueSettings } from './queue-settings.js';

/** Seconds a cleaner or nack holds an in-flight file it claimed while it requeues it. */
export const REQUEUE_CLAIM_SECONDS = 60;
/** A message file that does not parse and changed this recently may still be being written. */
const FRESH_WRITE_MS = 10_000;
/** How long a consumer leaves alone a message file it may not read (another may). */
const UNREADABLE_MS = 60_000;

export class Claimer {
  constructor(
    private readonly name: string,
    private readonly dirs: QueueDirs,
    private readonly cursor: ClaimCursor,
    private readonly settings: QueueSettings,
    private readonly clock: Clock,
    private readonly report: Reporter,
  ) {}

  /** Takes one ready file: rename into work/ first, read after. null if it was lost or unusable. */
  claimReady(ready: string, lease: number, callTimeout: number | undefined): Message | null {
    const nowSec = Math.floor(this.clock.now() / 1000);
    let inFlight = inFlightFileName(nowSec + lease, ready, newClaimToken());
    // RACE: another consumer renamed this file first: ours finds it gone.
    if (!this.claim(this.dirs.dirSlash + ready, inFlight)) {
      this.cursor.lost();
      return null;
    }
    this.cursor.won();
    const msg = this.readClaimed(inFlight);
    if (msg === null) return null;
    // The message's own lease applies when the call did not set one; it is only known now.
    if (callTimeout === undefined && msg.lease !== null && msg.lease !== lease) {
      const renewed = inFlightFileName(nowSec + msg.lease, ready, newClaimToken());
      if (!this.claim(this.dirs.workSlash + inFlight, renewed)) return null;
      inFlight = renewed;
    }
    msg.filename = inFlight;
    msg.consumedAt = this.clock.now();
    if (this.report.logging) this.report.log('debug', `consumed ${this.name}/${inFlight}`);
    return msg;
  }

  /** Takes one ready message by its file name (as consume would); null if it is gone. */
  takeByName(name: string, lease = REQUEUE_CLAIM_SECONDS): Message | null {
    checkMessageFileName(name, ['ready']);
    return this.claimReady(name, lease, lease);
  }

  /** Renames an in-flight file to a fresh claim of it with a lease of `seconds`; null if gone. */
  claimInFlight(file: InFlightName, seconds: number, p: QueuePaths = this.dirs.paths): string | null {
    const nowSec = Math.floor(this.clock.now() / 1000);
    const renamed = inFlightFileName(nowSec + seconds, readyNameOf(file), newClaimToken());
    // RACE: a cleaner, a nack or an extend of another client took it first: ours finds it gone.
    return this.claim(join(p.work, file.name), renamed, p) ? renamed : null;
  }

  private claim(src: string, inFlightName: string, p: QueuePaths = this.dirs.paths): boolean {
    try {
      return claimRename(src, p.work + sep + inFlightName);
    } catch (err) {
      // work/ itself may be gone (deleted by hand): make it again and try once more.
      if (errnoOf((err as { cause?: unknown }).cause) === 'ENOENT' && exists(this.dirs.dir)) {
        if (p === this.dirs.paths) {
          // The work/ we hold pinned may have been removed: look again, then make it.
          if (this.dirs.pinned) this.dirs.check(true);
          this.dirs.ensureSubfolder('work');
          p = this.dirs.paths;
        } else {
          ensureDir(p.work, { groupShared: this.settings.groupShared });
        }
        return claimRename(src, join(p.work, inFlightName));
      }
      throw this.dirs.missingOr(err);
    }
  }

  /**
   * Reads a file this client just claimed into work/. A file that does not parse is put
   * back if it changed in the last seconds (the original tool writes in place, so it may
   * be half written), and otherwise moved to corrupt/ and reported.
   */
  readClaimed(inFlight: string, p: QueuePaths = this.dirs.paths): Message | null {
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
      // A file this user may not read, in a tree shared by several (another user's umask):
      // put back for a consumer that may, and left alone here for a while. Not an error
      // that stops this consumer, nor corrupt: nothing is wrong with its content.
      if (isDdmqError(err, 'IO') && (err.osCode === 'EACCES' || err.osCode === 'EPERM')) {
        this.putBack(path, file, p, this.clock.now() + UNREADABLE_MS);
        this.report.warn(new DdmqError('IO', `${err.message}: put back into the queue, and not tried again by this consumer for ${UNREADABLE_MS / 1000} s`, { path: err.path, osCode: err.osCode, cause: err }));
        return null;
      }
      throw err;
    }
    if (content === null) return null;
    try {
      const msg = decodeMessage(content, { queue: this.name, file, path: this.dirs.folders.paths.work + sep + inFlight }); // the path to show
      msg.queue = this.name; // the folder it is in, whatever the file says
      return msg;
    } catch (err) {
      if (!isDdmqError(err, 'CORRUPT_MESSAGE')) throw err;
      const now = this.clock.now();
      const mtime = statMtime(path);
      // RACE: changed in the last seconds (or "in the future", by a skewed clock): maybe half
      // written by the original tool, which writes in place.
      if (mtime !== null && mtime > now - FRESH_WRITE_MS) {
        this.putBack(path, file, p, Math.min(mtime, now) + FRESH_WRITE_MS);
        return null;
      }
      this.moveAside(path, inFlight, err);
      return null;
    }
  }

  /** Renames a claimed file back into the queue, not to be tried by this consumer before `until` (ms). */
  private putBack(path: string, file: InFlightName, p: QueuePaths, until: number): void {
    const ready = readyNameOf(file);
    if (claimRename(path, join(p.dir, ready))) this.cursor.defer(ready, until);
  }

  private moveAside(path: string, name: string, err: DdmqError): void {
    // Pinned: corrupt/ may not be there yet, and nothing may redirect this rename out of the tree.
    const corrupt = this.dirs.folders.pinSubfolder('corrupt', this.settings.groupShared);
    try {
      claimRename(path, corrupt.at + sep + name);
    } finally {
      corrupt.close();
    }
    const target = join(this.dirs.folders.paths.corrupt, name);
    this.report.warn(new DdmqError('CORRUPT_MESSAGE', `${err.message}; moved to ${target}`, { path: target, cause: err }));
  }
}

/** A file's modification time in ms; null if it is gone. */
export function statMtime(path: string): number | null {
  try {
    return retryStale(() => fs.lstatSync(path)).mtimeMs;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw ioError(err, 'look up', path);
  }
}
