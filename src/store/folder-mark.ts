/**
 * A cheap check of whether a folder's entries may have changed since it was listed: one
 * lstat instead of a listing (open, stat, reads). Adding, removing or renaming an entry
 * moves a folder's modification time; so does swapping the folder for another (its inode
 * changes) or deleting it (the lstat fails).
 *
 * An unchanged modification time is only trusted when it is older than the listing it
 * vouches for by TRUST_MS: sshfs and MooseFS keep whole seconds, MooseFS shows a folder's
 * attributes up to a second stale while its listing is fresh, and the broker's clock may
 * differ a little from the file server's (which stamps the time). A change made after a
 * listing began gets a time at or after it, so within TRUST_MS of it; a folder changed
 * that recently is listed again rather than trusted.
 *
 * Where listings may be staler than the folder's status, the margin grows by that much:
 * sshfs caches listings and attributes apart, each ~20 s, so its lstat may show a change
 * that its listing does not show yet (listingStalenessOf).
 */
import * as fs from 'node:fs';
import { entryStat } from './fsx.js';

/**
 * How much older than a listing a folder's modification time must be for an unchanged one
 * to prove that nothing came since: 1 s of resolution + 1 s of attribute staleness + 1 s
 * of clock uncertainty.
 */
export const TRUST_MS = 3000;

/** How much staler than a folder's status its listing may be on sshfs (its caches of each, ~20 s, expire apart), in ms. */
export const SSHFS_LISTING_STALENESS_MS = 21_000;

/**
 * How much staler than a folder's status (lstat) a listing of it may be, in ms, on the
 * file system that `path` is on, by /proc/self/mountinfo: SSHFS_LISTING_STALENESS_MS on
 * sshfs, 0 elsewhere (a kernel's caches, NFS's included, drop a folder's listing when its
 * modification time moves; GlusterFS and MooseFS were measured so).
 */
export function listingStalenessOf(path: string): number {
  if (process.platform !== 'linux') return 0;
  let mounts: string;
  let real = path;
  try {
    mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return 0;
  }
  try {
    real = fs.realpathSync(path);
  } catch {
    // not made yet: its path as given
  }
  let best = '';
  let type = '';
  for (const line of mounts.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 5) continue;
    // Spaces and the like are octal escapes (\040).
    const point = fields[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = real === point || real.startsWith(point.endsWith('/') ? point : `${point}/`);
    if (inside && point.length >= best.length) {
      best = point;
      type = fields[dash + 1]!;
    }
  }
  return type === 'fuse.sshfs' ? SSHFS_LISTING_STALENESS_MS : 0;
}

/**
 * A folder's lstat: null if nothing is there, undefined if it cannot be looked at (then
 * nothing is proven: the caller lists, and the listing reports the error).
 */
export function folderStat(path: string): fs.Stats | null | undefined {
  try {
    return entryStat(path);
  } catch {
    return undefined;
  }
}

/** What of a folder's lstat moves when its entries change, or when it is another folder. */
function signature(stat: fs.Stats | null): string {
  return stat === null ? 'none' : `${stat.dev}:${stat.ino}:${stat.mode}:${stat.mtimeMs}:${stat.ctimeMs}:${stat.size}:${stat.nlink}`;
}

/** A folder as it was when a listing of it found nothing to do (see the top of this file). */
export class FolderMark {
  /**
   * @param trustMs - how much older than a listing an unchanged modification time must be
   *   to prove nothing came: TRUST_MS, plus how much staler listings may be (listingStalenessOf)
   */
  constructor(trustMs: number | (() => number) = TRUST_MS) {
    this.trustOf = typeof trustMs === 'number' ? () => trustMs : trustMs;
  }

  /** The margin, asked for only when a folder is first compared (finding the file system costs a read of mountinfo and a realpath). */
  private readonly trustOf: () => number;
  private trust: number | undefined;

  private get trustMs(): number {
    return (this.trust ??= this.trustOf());
  }

  private sig: string | undefined;
  private mtime = 0;
  private listedAt = -Infinity;

  /** Whether a listing was marked (and not forgotten since). */
  get marked(): boolean {
    return this.sig !== undefined;
  }

  /** Whether the folder was not there at the marked listing. */
  get missing(): boolean {
    return this.sig === 'none';
  }

  /**
   * Marks a listing that found nothing to do: `startedAt` (the broker's clock) is when it
   * began, `stat` the folder's lstat taken after it ended (a change between the two has a
   * recent time, which is not trusted).
   */
  mark(stat: fs.Stats | null | undefined, startedAt: number): void {
    if (stat === undefined) return this.forget();
    this.sig = signature(stat);
    this.mtime = stat?.mtimeMs ?? 0;
    this.listedAt = startedAt;
  }

  /** Forgets the mark: the next look lists. */
  forget(): void {
    this.sig = undefined;
  }

  /**
   * Whether `stat` (the folder's lstat now) proves that the folder is as the marked listing
   * found it: the same status, with a modification time older than that listing by at
   * least TRUST_MS (a folder that is not there stays not there).
   */
  unchanged(stat: fs.Stats | null | undefined): boolean {
    return this.compare(stat) === 'same';
  }

  /**
   * As unchanged(), in three: 'same' (proven unchanged), 'changed' (its status moved, or
   * it cannot be looked at), or 'recent': the same status, but the marked listing was too
   * close to the folder's time to vouch for it. A listing from `trustedFrom` on would: a
   * change hidden within the time's resolution happened before it.
   */
  compare(stat: fs.Stats | null | undefined): 'same' | 'changed' | 'recent' {
    if (stat === undefined || this.sig === undefined || signature(stat) !== this.sig) return 'changed';
    return stat === null || this.listedAt - this.mtime >= this.trustMs ? 'same' : 'recent';
  }

  /** From when (the broker's clock) a listing of the folder, as it is marked, can be trusted. */
  get trustedFrom(): number {
    return this.mtime + this.trustMs;
  }
}
