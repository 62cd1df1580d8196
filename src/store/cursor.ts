/**
 * Where a consumer is in its queue: the cached, sorted listing it claims from, listed
 * again when used up or old; the names put back for a while (fresh files that did not
 * parse); the claims lost to other clients and how far that makes it jump ahead; when
 * delayed/ is next looked at for messages that are due; and, once a listing found nothing
 * to take, whether the queue is worth listing again (worthListing: one lstat while idle).
 */
import { join } from 'node:path';
import { ReadyListing } from '../format/listing.js';
import { parseInFlightName, readyNameOf } from '../format/names.js';
import type { QueuePaths } from './folders.js';
import { FolderMark, folderStat, TRUST_MS } from './folder-mark.js';
import { claimRename, listIfExists } from './fsx.js';
import type { Clock, Reporter } from './host.js';
import type { QueueDirs } from './queue-dirs.js';
import { systemTimers } from './timers.js';

/**
 * While a queue is idle, how often delayed/ is looked at for messages that have come (an
 * lstat; it is listed when it changed, or when a message seen there is due).
 */
export const IDLE_DELAYED_MS = 5000;
/**
 * While a queue is idle, the safety net: its folders are checked, its settings read and its
 * folder listed at least this often, whatever the cheap check says.
 */
export const IDLE_FULL_MS = 30_000;
/** The youngest listing a consumer that loses near its end lists again, in ms (see lost()). */
const TAIL_RELIST_MS = 5;
/** How much a consumer's jump window grows with each claim lost lately (see jumpWindow()). */
const JUMP_BASE = 8;
/** The most claims lost lately that count: the jump window is at most JUMP_BASE^5 = 32,768 names. */
const STREAK_MAX = 5;
/** Claims won in a row that take one off the losing streak (see won()). */
const WINS_PER_STEP = 64;

export class ClaimCursor {
  private listing = ReadyListing.EMPTY;
  private listedAt = -Infinity;
  private listingCost = 0;
  /** Files that did not parse but were fresh, put back until the given time. */
  private readonly deferred = new Map<string, number>();
  /** Claims this queue object lost to other clients (a measure of contention). */
  lostClaims = 0;
  /** Listings of the ready folder this queue object made (a measure of metadata traffic). */
  listings = 0;
  /** Claims lost lately, up to STREAK_MAX (WINS_PER_STEP claims won in a row take one off): each multiplies how far this consumer jumps ahead by JUMP_BASE. */
  private losingStreak = 0;
  /** Claims won since the last lost one, or since the streak last went down. */
  private winsInRow = 0;
  /** Claims won from the current listing. */
  private wonSinceListing = 0;
  /** Whether this consumer jumped over names of the current listing (entering it, or after a loss). */
  private jumpedOver = false;
  /** A listing walked name by name, without jumps, until a claim is won (see sweep()). */
  private sweeping = false;
  /** When delayed/ is to be looked at again, and what looking cost last time. */
  private nextDelayedScan = 0;
  private delayedScanCost = 0;
  /** When the earliest message that delayed/ held at the last look is due (ms; Infinity: none). */
  private delayedNextDue = Infinity;
  /** delayed/ as the last look at it left it. */
  private readonly delayedMark: FolderMark;
  /** The queue folder as the last listing that found nothing to take left it. */
  private readonly readyMark: FolderMark;
  /** When the last full listing (folders checked, delayed/ looked at) began, on the broker's clock. */
  private fullAt = -Infinity;

  constructor(
    private readonly name: string,
    private readonly dirs: QueueDirs,
    private readonly clock: Clock,
    private readonly report: Reporter,
    /** The floor of the listing interval, in ms. */
    private readonly listingIntervalMs: number,
    /** How much staler than a folder's status its listing may be here, in ms (see folder-mark.ts). */
    listingStalenessMs: () => number = () => 0,
  ) {
    const trust = () => TRUST_MS + listingStalenessMs();
    this.delayedMark = new FolderMark(trust);
    this.readyMark = new FolderMark(trust);
  }

  /**
   * The next name to try from the cached listing. The folder is listed again when the
   * listing is used up, or when it is older than max(listingIntervalMs, 10 × what the last
   * listing took), so that listing costs at most about a tenth of the time however deep
   * the queue is. 'exhausted' when a fresh listing gave nothing that could be claimed.
   */
  next(mayRelist: boolean): string | 'relisted' | 'exhausted' {
    const now = this.clock.now();
    const maxAge = Math.max(this.listingIntervalMs, 10 * this.listingCost);
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
  promoteDue(force = false, p: QueuePaths = this.dirs.paths): number {
    const now = this.clock.now();
    if (!force && now < this.nextDelayedScan) return 0;
    const started = systemTimers.now();
    const nowSec = Math.floor(now / 1000);
    let moved = 0;
    let nextDue = Infinity;
    const names = listIfExists(p.delayed);
    for (const name of names ?? []) {
      const file = parseInFlightName(name);
      if (file === null) continue;
      if (file.expiry > nowSec) {
        nextDue = Math.min(nextDue, file.expiry * 1000);
        continue;
      }
      try {
        // RACE: another client promotes the same file; its rename or ours finds it gone (false).
        if (claimRename(join(p.delayed, name), join(p.dir, readyNameOf(file)))) moved++;
      } catch (err) {
        throw this.dirs.missingOr(err);
      }
    }
    this.delayedScanCost = systemTimers.now() - started;
    this.nextDelayedScan = now + Math.max(1000, 10 * this.delayedScanCost);
    this.delayedNextDue = nextDue;
    // Not there: its making would move the queue folder's time, which worthListing looks at first.
    this.delayedMark.mark(names === null ? null : folderStat(this.dirs.folders.paths.delayed), now);
    if (moved > 0 && this.report.logging) this.report.log('debug', `${this.name}: ${moved} delayed messages are due`);
    return moved;
  }

  /**
   * Whether consume should list the queue now. Always, unless its last listing found
   * nothing to take (the queue is idle); then only when one lstat of the folder shows that
   * it may have changed since (see folder-mark.ts; a listing that came too soon after the
   * folder's last change is confirmed by one more, of the folder alone: at once when
   * `look` (a consume that looks finds what was published before it began), else once the
   * folder's time is TRUST_MS old), when names put back for a while are
   * due, when delayed/ changed or holds a message that is due (looked at every
   * IDLE_DELAYED_MS, and due messages found are moved in), or when the last full listing
   * is IDLE_FULL_MS old (the safety net: it also checks the folders, and consume reads the
   * settings again). So an idle consumer's poll costs one lstat.
   */
  worthListing(look: boolean): boolean {
    if (this.listing.remaining > 0 || !this.readyMark.marked) return true;
    const now = this.clock.now();
    for (const until of this.deferred.values()) if (until <= now) return true;
    // A clock set back is not trusted either.
    if (now - this.fullAt >= IDLE_FULL_MS || now < this.fullAt) return true;
    // The folder's status as the empty listing left it: nothing came (nor was it swapped or
    // deleted). Unless that listing was too close to the folder's time: then a listing
    // shows what came within its resolution, at once for a look; a waiting consumer's poll
    // lists once that time is old enough (TRUST_MS) for the listing to vouch for it.
    const state = this.readyMark.compare(folderStat(this.dirs.dir));
    if (state === 'changed') return true;
    if (state === 'recent' && (look || now >= this.readyMark.trustedFrom) && this.relistQuietly(now)) return true;
    if (now >= this.nextDelayedScan) {
      // The queue folder is unchanged, so delayed/ is the one that was checked: looked at through it.
      const unchanged = this.delayedMark.missing || this.delayedMark.unchanged(folderStat(this.dirs.folders.paths.delayed));
      if (now >= this.delayedNextDue || !unchanged) {
        if (this.promoteDue(true) > 0) return true;
      }
      this.nextDelayedScan = Math.min(now + IDLE_DELAYED_MS, this.delayedNextDue);
    }
    return false;
  }

  /**
   * Lists the queue folder whose status did not change since the last (full) listing, to
   * confirm that nothing came within its time's resolution: the folders need no new check
   * (a swap would have changed the status). true if it found names, which the caller takes.
   */
  private relistQuietly(now: number): boolean {
    const listing = ReadyListing.of(this.dirs.list(this.dirs.paths.dir));
    if (listing.size === 0) {
      this.readyMark.mark(folderStat(this.dirs.dir), now);
      this.calm();
      return false;
    }
    this.listing = listing;
    this.listedAt = now;
    this.wonSinceListing = 0;
    this.jumpedOver = false;
    this.readyMark.forget();
    return true;
  }

  private relist(): void {
    const started = systemTimers.now();
    const startedAt = this.clock.now();
    this.dirs.check(false);
    // What delayed/ looked like is vouched for by the queue folder as marked before: looked
    // at again by the next idle look, unless promoteDue does now.
    this.delayedMark.forget();
    this.promoteDue();
    const names = this.dirs.list(this.dirs.paths.dir);
    this.listings++;
    // RACE: an old listing is replaced, never kept: the names left in it that other
    // consumers took meanwhile (a worker back from a task of a minute finds most of them
    // gone) would each cost a lost claim. The fresh one holds only what is ready now, in
    // order, so a lone consumer's order is the same.
    this.listing = ReadyListing.of(names);
    this.wonSinceListing = 0;
    this.jumpedOver = false;
    // An empty queue has no one to compete with for it: the window goes (a lone consumer
    // whose listed names were purged is back to exact order once it finds the queue empty).
    if (this.listing.size === 0) this.calm();
    // RACE: the competition seen before is still there: the new listing is entered at a
    // random point of the jump window, not at its head where the other consumers are (each
    // losing a claim to find it out). A worker back from a task lists again, so a window
    // that shrank with every listing would bring it back to the head after a few tasks.
    if (this.losingStreak > 0 && !this.sweeping) this.jump();
    this.listedAt = this.clock.now();
    this.fullAt = startedAt;
    // Names put back until a time now past are names like any other.
    for (const [name, until] of this.deferred) if (until <= this.listedAt) this.deferred.delete(name);
    // Nothing to take: until the folder changes, one lstat tells the next consume so (worthListing).
    if (this.listing.size === 0) this.readyMark.mark(folderStat(this.dirs.dir), startedAt);
    else this.readyMark.forget();
    this.listingCost = systemTimers.now() - started;
    this.report.log('debug', `listed ${this.name}: ${this.listing.size} ready in ${this.listingCost.toFixed(1)} ms`);
  }

  /** Drops the cached listing, so that the next consume lists the folder. */
  forget(): void {
    this.listing = ReadyListing.EMPTY;
    this.readyMark.forget();
  }

  /** A ready file was written: one that sorts before the next cached name must not wait for the next listing. */
  wrote(filename: string): void {
    this.readyMark.forget();
    if (this.listing.remaining > 0 && this.listing.sortsBeforeNext(filename)) this.forget();
  }

  /** A delayed file was written, due at this epoch second: delayed/ is looked at by then. */
  delayedUntil(due: number): void {
    this.nextDelayedScan = Math.min(this.nextDelayedScan, due * 1000);
    this.delayedNextDue = Math.min(this.delayedNextDue, due * 1000);
  }

  /** A file put back into the queue, not to be tried again before `until` (ms). */
  defer(name: string, until: number): void {
    this.deferred.set(name, until);
  }

  /**
   * RACE: a claim lost means another consumer is working at this point of the listing.
   * Walking on behind it, this consumer would lose again at every name it takes first. So
   * it jumps ahead a random distance, within a window that grows with every claim lost
   * lately (jumpWindow). Consumers spread out over the listing, each walks a stretch of its
   * own and rarely meets another; the names one jumps over are taken by the consumer
   * behind, which walks into them, or found at a later listing. So order is kept to within
   * the window, and exactly when there is no competition (a lone consumer never loses;
   * one left alone is back to exact order after WINS_PER_STEP claims per step of its streak).
   */
  lost(): void {
    this.lostClaims++;
    this.losingStreak = Math.min(STREAK_MAX, this.losingStreak + 1);
    this.winsInRow = 0;
    if (this.sweeping) return; // every name of this listing is tried in turn
    // RACE: near the end of its listing, where every consumer's listing ends too (the
    // newest names, the last of a draining queue), the few names left are the ones all of
    // them are trying: a new listing, which leaves out what was taken, costs less than
    // losing each. Not more often than listing would cost a tenth of the time, the cost
    // being the last listing's scaled to the names left in it: the folder has shrunk as
    // much, and a listing of a draining queue's last names is cheap (waiting for a tenth
    // of what listing all of it cost would mean losing claims meanwhile). A guess that is
    // too low costs one listing: the next is then timed by what that one took. Only once a
    // claim was won from this listing: a listing that gave nothing but losses may be a
    // stale cache of the mount (sshfs, NFS), which listing again would only show again.
    const cost = (this.listingCost * (this.listing.remaining + 1)) / Math.max(1, this.listing.size);
    if (this.wonSinceListing > 0 && this.listing.remaining < JUMP_BASE ** this.losingStreak && this.clock.now() - this.listedAt >= Math.max(TAIL_RELIST_MS, 10 * cost)) {
      this.listedAt = -Infinity; // next() lists again
      return;
    }
    this.jump();
  }

  /** Skips a random number of names within the jump window. */
  private jump(): void {
    const count = Math.floor(Math.random() * this.jumpWindow());
    if (count === 0) return;
    this.listing.skip(count);
    this.jumpedOver = true;
  }

  /**
   * RACE: a consume that found nothing to claim, having jumped over names of its listing,
   * must not say the queue is empty: the names it jumped may be there still, taken by no
   * one. So it lists once more and walks that listing name by name, without jumps, until a
   * claim is won; false (nothing to do) when it jumped over nothing.
   */
  sweep(): boolean {
    if (!this.jumpedOver) return false;
    this.sweeping = true;
    this.listedAt = -Infinity; // next() lists again
    return true;
  }

  /** No competition seen: the window goes. */
  private calm(): void {
    this.losingStreak = 0;
    this.winsInRow = 0;
  }

  /**
   * A claim won: WINS_PER_STEP of them in a row take one off the losing streak, so that a
   * consumer left alone comes back to exact order, and one among many keeps its window for
   * as long as it keeps meeting the others now and then.
   */
  won(): void {
    this.wonSinceListing++;
    this.sweeping = false;
    if (this.losingStreak > 0 && ++this.winsInRow >= WINS_PER_STEP) {
      this.losingStreak--;
      this.winsInRow = 0;
    }
  }

  /**
   * How far a consumer that keeps losing jumps ahead at most: 8, 64, 512, 4,096, 32,768
   * names (eightfold for every claim lost lately, so that sixteen consumers that start
   * together at the head are spread after two losses each, and ten thousand after five),
   * never past the last name left: jumping off the end would end the listing (and could
   * end a consume that may not list again with nothing). Capped at half of what is left,
   * consumers would crowd into the first half of the last names of a draining queue.
   */
  private jumpWindow(): number {
    return Math.max(1, Math.min(JUMP_BASE ** this.losingStreak, this.listing.remaining));
  }
}
