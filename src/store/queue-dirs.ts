/**
 * A queue's folders as its per-message calls reach them: through plain paths, or through
 * the folders kept pinned when others can write the tree (see folders.ts), pinned again
 * when a name no longer leads to the folder that was pinned, and held open across an await
 * by a call that still uses them.
 */
import { join, sep } from 'node:path';
import { isDdmqError } from '../format/errors.js';
import { errnoOf, exists, listIfExists } from './fsx.js';
import { ensureDir } from './fs-write.js';
import { canPin, type PinnedQueue, QueueFolders, type QueuePaths, queueMissing, SETTINGS_FILE, type Subfolder, unpin } from './folders.js';
import type { Clock } from './host.js';
import type { QueueSettings } from './queue-settings.js';

export class QueueDirs {
  /** The queue's folders: the only way to them (see folders.ts). */
  readonly folders: QueueFolders;
  /** The plain path of the queue folder (for messages and errors). */
  readonly dir: string;
  /**
   * The paths the per-message calls use: plain, or through the folders kept pinned in
   * `hot` when others can write the tree. Set by check().
   */
  paths: QueuePaths;
  private hot: PinnedQueue | null = null;
  // With the separator, for paths built per message (names are checked; join would only normalise).
  dirSlash: string;
  workSlash: string;
  /** Pinned folders held open across an await, and how many times (hold). */
  private readonly holds = new Map<PinnedQueue, number>();
  /** Pinned folders no longer in use, to be closed once no one holds them. */
  private readonly retired = new Set<PinnedQueue>();
  /** When folders.check() last ran (host clock, ms). */
  private checkedAt = -Infinity;

  constructor(
    root: string,
    private readonly name: string,
    private readonly pinAlways: boolean,
    private readonly clock: Clock,
    private readonly settings: QueueSettings,
  ) {
    this.folders = new QueueFolders(root, name);
    this.paths = this.folders.paths;
    this.dir = this.paths.dir;
    this.dirSlash = this.dir + sep;
    this.workSlash = this.paths.work + sep;
  }

  /** Whether the per-message calls go through pinned folders now. */
  get pinned(): boolean {
    return this.hot !== null;
  }

  /** The pinned folders in use now, to tell whether a call pinned anew (null: plain paths). */
  get current(): PinnedQueue | null {
    return this.hot;
  }

  /**
   * Checks that the queue's folders are real folders, not links (UNSAFE_PATH), and that
   * the queue exists (QUEUE_MISSING): when the queue is opened, and again at most once a
   * second from the per-message calls. When others can write the tree (or the broker is
   * told to pin), the per-message calls go through the folders kept pinned, opened again
   * when a name no longer leads to the folder that was pinned.
   */
  check(force = true): void {
    const now = this.clock.local();
    if (!force && now - this.checkedAt < 1000) return;
    const found = this.folders.check();
    if (found === null) throw queueMissing(this.name, this.dir);
    if ((found.exposed || this.pinAlways) && canPin()) {
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

  /** Lets the pinned folders go (opened again if the queue is used). */
  close(): void {
    this.usePaths(null);
    this.checkedAt = -Infinity;
  }

  /**
   * Switches the per-message paths to `pinned` (or to the plain ones). The folders pinned
   * before are closed once the call under way has returned (its synchronous part may still
   * use their paths, and a descriptor closed too soon could be reused for another), or,
   * when a call holds them across an await (hold), once it lets them go. Closing them
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
  hold(): () => void {
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
  stalePin(err: unknown): boolean {
    if (this.hot === null || !isDdmqError(err, 'IO') || err.osCode !== 'ENOENT' || !exists(this.dir)) return false;
    const before = this.hot;
    this.check(true);
    return this.hot !== before;
  }

  /**
   * Makes sure a subfolder is there for the per-message calls. With plain paths it is made
   * if missing. With pinned folders a missing one is made with mkdir through the pinned
   * queue folder (mkdir never follows a link) and then pinned like the others; a link
   * swapped in meanwhile is refused (UNSAFE_PATH) and its path keeps leading nowhere.
   */
  ensureSubfolder(name: Subfolder): void {
    if (this.hot === null) ensureDir(this.paths[name], { groupShared: this.settings.groupShared });
    else if (this.hot.sub[name] === null) {
      ensureDir(this.hot.dir.at + sep + name, { groupShared: this.settings.groupShared });
      this.check(true);
    }
  }

  /** Lists one of the queue's folders; a missing one means the queue was deleted. */
  list(dir: string): string[] {
    const names = listIfExists(dir);
    if (names !== null) return names;
    if (dir === this.paths.work && exists(join(this.dir, SETTINGS_FILE))) return [];
    throw queueMissing(this.name, this.dir);
  }

  /** Turns ENOENT on the queue folder into QUEUE_MISSING. */
  missingOr(err: unknown): unknown {
    const cause = (err as { cause?: unknown }).cause ?? err;
    if (errnoOf(cause) === 'ENOENT' && !exists(this.dir)) return queueMissing(this.name, this.dir);
    return err;
  }
}
