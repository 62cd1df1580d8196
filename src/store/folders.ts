/**
 * The folders of a queue, and the one place where ddmq opens them.
 *
 * Nothing ddmq does may leave the root, so no folder or settings file below it is
 * reached through a symbolic link (the root itself may be one: the user named it). Two
 * ways of opening serve two kinds of work:
 *
 * - check(): the queue folder and each subfolder that exists are looked at with lstat,
 *   and must be real folders. It also tells whether anyone but this user can swap them:
 *   a root, queue folder or subfolder owned by another user (root aside), or writable by
 *   the group or others (sticky or not), is "exposed". The folders above the root are
 *   the user's to trust: the root's path is followed as given.
 * - pin(): the folders are opened one level at a time, each without following a link
 *   (O_NOFOLLOW), and used through their open descriptors (/proc/PID/fd/N), which keep
 *   naming the folder that was checked even if its name is swapped for a link midway.
 *
 * Everything that walks a folder and deletes, renames or overwrites what it finds
 * (delete, purge, clean, settings reads and writes, moving corrupt files aside) works
 * through folders pinned for the call. The per-message calls (publish, consume, ack, nack)
 * work through folders the Queue keeps pinned when the queue is exposed (or the broker is
 * told to always pin): then no one who can write the tree can swap a folder between a
 * check and its use. In a tree only this user can write, nobody else can swap anything, so
 * they use the plain paths, checked at least once a second while used; that saves about a
 * tenth of a message's cost on a fast local disk (a path through /proc is a longer walk).
 * Where there is no /proc (not Linux), pin() falls back to check().
 */
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { DdmqError } from '../format/errors.js';
import { isMessageName } from '../format/names.js';
import { entryKind, errnoOf, ioError, isNfsSillyRename, realDirStat, registerPinned, retryStale, TEMP_PREFIX, unregisterPinned, unsafePath } from './fsx.js';
import { ensureDir } from './fs-write.js';

export const WORK_DIR = 'work';
export const CORRUPT_DIR = 'corrupt';
/** Messages published with a delay (or waiting out a retry backoff) wait here, out of the original tool's sight. */
export const DELAYED_DIR = 'delayed';
export const SETTINGS_FILE = 'ddmq.yaml';
/** The subfolders a queue may have; a folder added later goes here, so every command treats it the same. */
export const SUBFOLDERS = [WORK_DIR, DELAYED_DIR, CORRUPT_DIR] as const;
/** The name of one of a queue's subfolders. */
export type Subfolder = (typeof SUBFOLDERS)[number];

/** The paths of one queue's folders, to operate through (`at`) and to show people (`shown`). */
/** The paths of a queue's folders. */
export interface QueuePaths {
  /** The queue's folder: its ready messages. */
  readonly dir: string;
  /** Its messages in flight. */
  readonly work: string;
  /** Its messages not due yet. */
  readonly delayed: string;
  /** Files that could not be read as messages, moved aside. */
  readonly corrupt: string;
}

const OPEN_DIR_NOFOLLOW = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

let pinBase: string | null | undefined;

/** "/proc/PID/fd/" where open folders can be used through their descriptors; null elsewhere. */
function pinningBase(): string | null {
  if (pinBase !== undefined) return pinBase;
  pinBase = null;
  if (process.platform === 'linux') {
    const base = `/proc/${process.pid}/fd/`;
    let fd: number | undefined;
    try {
      fd = fs.openSync('/', OPEN_DIR_NOFOLLOW);
      if (fs.statSync(`${base}${fd}/.`).ino === fs.statSync('/').ino) pinBase = base;
    } catch {
      // no usable /proc: check() only
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
  return pinBase;
}

/** A folder opened without following a link: operate through `at`, show `path`. */
export class OpenFolder {
  private closed = false;

  private constructor(
    /** The folder's plain path. */
    readonly path: string,
    private readonly pinnedAt: string,
    private fd: number | undefined,
    /** The folder's identity when it was opened, to tell whether its name still leads to it. */
    readonly dev: number,
    /** With `dev`, the folder's identity. */
    readonly ino: number,
  ) {}

  /** The path to operate through; not to be used once closed (its descriptor number may be reused). */
  get at(): string {
    if (this.closed) throw new Error(`internal: folder ${this.path} used after it was closed`);
    return this.pinnedAt;
  }

  /**
   * Opens `name` in the folder `parentAt` (itself pinned, or the root) without following
   * a link. null if it does not exist; UNSAFE_PATH if it is a link or not a folder.
   */
  static open(parentAt: string, name: string, path: string): OpenFolder | null {
    const base = pinningBase();
    if (base === null) {
      const stat = realDirStat(join(parentAt, name));
      return stat === null ? null : new OpenFolder(path, path, undefined, stat.dev, stat.ino);
    }
    let fd: number;
    try {
      fd = retryStale(() => fs.openSync(parentAt + sep + name, OPEN_DIR_NOFOLLOW));
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') return null;
      if (code === 'ELOOP' || code === 'ENOTDIR') {
        const kind = entryKind(parentAt + sep + name);
        if (kind === null) return null;
        throw unsafePath(path, kind === 'link' ? 'is a symbolic link' : 'is not a folder');
      }
      throw ioError(err, 'open folder', path);
    }
    let stat: fs.Stats;
    try {
      stat = fs.fstatSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      throw ioError(err, 'look up', path);
    }
    const at = `${base}${fd}`;
    registerPinned(at, path);
    return new OpenFolder(path, at, fd, stat.dev, stat.ino);
  }

  /** Whether this folder is opened through /proc (false where pinning falls back to checks). */
  get pinned(): boolean {
    return this.fd !== undefined;
  }

  /** Closes the folder; its pinned path is no longer valid. */
  close(): void {
    this.closed = true;
    if (this.fd === undefined) return;
    unregisterPinned(this.pinnedAt);
    try {
      fs.closeSync(this.fd);
    } catch {
      // closing a folder descriptor cannot lose data
    }
    this.fd = undefined;
  }
}

/** A queue's folders, opened by pin(): each subfolder is null if it does not exist. */
export interface PinnedQueue {
  /** The queue's folder. */
  readonly dir: OpenFolder;
  /** Its subfolders. */
  readonly sub: Readonly<Record<Subfolder, OpenFolder | null>>;
  /** The paths to operate through: pinned where open, plain (and not there) otherwise. */
  readonly paths: QueuePaths;
}

/** One queue's folders: their paths, and the two ways of opening them (see the top of this file). */
export class QueueFolders {
  /** The plain paths of the queue's folders. */
  readonly paths: QueuePaths;

  /**
   * @param root - the root folder
   * @param name - the queue
   */
  constructor(
    /** The root folder. */
    readonly root: string,
    /** The queue. */
    readonly name: string,
  ) {
    const dir = join(root, name);
    this.paths = { dir, work: join(dir, WORK_DIR), delayed: join(dir, DELAYED_DIR), corrupt: join(dir, CORRUPT_DIR) };
  }

  /** The queue's folder. */
  get dir(): string {
    return this.paths.dir;
  }

  /**
   * Checks that the queue folder and each subfolder that exists are real folders
   * (UNSAFE_PATH otherwise), and whether others could swap them. null if the queue folder
   * does not exist.
   */
  check(): FolderCheck | null {
    const dir = realDirStat(this.paths.dir);
    if (dir === null) return null;
    const sub = {} as Record<Subfolder, fs.Stats | null>;
    for (const name of SUBFOLDERS) sub[name] = realDirStat(join(this.paths.dir, name));
    const exposed = othersCanWrite(dir) || othersCanWrite(rootStat(this.root)) || SUBFOLDERS.some((name) => sub[name] !== null && othersCanWrite(sub[name]!));
    return { dir, sub, exposed };
  }

  /** Whether a pinned queue still holds the folders its names lead to, as `check` found them. */
  static current(pinned: PinnedQueue, found: FolderCheck): boolean {
    const same = (open: OpenFolder | null, stat: fs.Stats | null) =>
      open === null ? stat === null : stat !== null && open.dev === stat.dev && open.ino === stat.ino;
    return same(pinned.dir, found.dir) && SUBFOLDERS.every((name) => same(pinned.sub[name], found.sub[name]));
  }

  /** Opens the queue folder and its subfolders that exist, pinned; null if the queue folder does not exist. */
  pin(): PinnedQueue | null {
    const dir = OpenFolder.open(this.root, this.name, this.paths.dir);
    if (dir === null) return null;
    const sub = { work: null, delayed: null, corrupt: null } as Record<Subfolder, OpenFolder | null>;
    try {
      for (const name of SUBFOLDERS) sub[name] = OpenFolder.open(dir.at, name, join(this.paths.dir, name));
    } catch (err) {
      closeAll(dir, sub);
      throw err;
    }
    // A subfolder that is not there yet has a path that leads nowhere: reached by its name,
    // even through the pinned queue folder, it could be a link by the time it is used. It is
    // made with mkdir through the pinned folder (which never follows a link), then pinned.
    const at = (name: Subfolder) => sub[name]?.at ?? NOWHERE + join(this.paths.dir, name);
    return { dir, sub, paths: { dir: dir.at, work: at(WORK_DIR), delayed: at(DELAYED_DIR), corrupt: at(CORRUPT_DIR) } };
  }

  /** Runs fn with the queue's folders pinned (null if the queue folder is missing), and closes them after. */
  withPinned<T>(fn: (pinned: PinnedQueue | null) => T): T {
    const pinned = this.pin();
    let result: T;
    try {
      result = fn(pinned);
    } catch (err) {
      if (pinned) closeAll(pinned.dir, pinned.sub);
      throw err;
    }
    if (result instanceof Promise) {
      return result.finally(() => pinned && closeAll(pinned.dir, pinned.sub)) as T;
    }
    if (pinned) closeAll(pinned.dir, pinned.sub);
    return result;
  }

  /**
   * Opens one subfolder pinned, making it first if it is missing (for moving a file into
   * corrupt/ or delayed/); the caller closes it.
   */
  pinSubfolder(name: Subfolder, groupShared: boolean): OpenFolder {
    const dir = OpenFolder.open(this.root, this.name, this.paths.dir);
    if (dir === null) throw ioError(Object.assign(new Error('gone'), { code: 'ENOENT' }), 'open folder', this.paths.dir);
    try {
      for (let attempt = 1; ; attempt++) {
        ensureDir(`${dir.at}${sep}${name}`, { groupShared });
        const sub = OpenFolder.open(dir.at, name, join(this.paths.dir, name));
        if (sub !== null) return sub;
        // RACE: a cleaner removed it (found empty) between our mkdir and our open.
        if (attempt >= 5) throw ioError(Object.assign(new Error('gone'), { code: 'ENOENT' }), 'open folder', join(this.paths.dir, name));
      }
    } finally {
      dir.close();
    }
  }
}

/**
 * The prefix of the path of a pinned queue's subfolder that is not there: no process has
 * a descriptor -1, so nothing under it can exist, and no one can make it. A call through
 * it fails with ENOENT, and the caller makes the subfolder (QueueDirs.ensureSubfolder).
 */
export const NOWHERE = '/proc/self/fd/-1';

/** What check() found. */
export interface FolderCheck {
  /** The queue folder's status. */
  dir: fs.Stats;
  /** Each subfolder's status; null if it does not exist. */
  sub: Record<Subfolder, fs.Stats | null>;
  /** Someone but this user (and root) can swap the queue's folders. */
  exposed: boolean;
}

/** Whether pinned folders can be had here (Linux, with /proc). */
export function canPin(): boolean {
  return pinningBase() !== null;
}

/**
 * Runs fn with the path of a queue's folder, opened without following a link; `missing`
 * (or QUEUE_MISSING if not given) when the folder is not there.
 */
export function inQueueFolder<T>(root: string, queue: string, fn: (at: string) => T, missing?: T): T {
  const dir = OpenFolder.open(root, queue, join(root, queue));
  if (dir === null) {
    if (missing !== undefined) return missing;
    throw queueMissing(queue, join(root, queue));
  }
  try {
    return fn(dir.at);
  } finally {
    dir.close();
  }
}

/** Checks that a queue's folders are not links (UNSAFE_PATH), for calls that do not open the Queue. */
export function checkQueueFolders(root: string, name: string): void {
  if (!new QueueFolders(root, name).check()) throw queueMissing(name, join(root, name));
}

export function queueMissing(name: string, dir: string): DdmqError {
  return new DdmqError('QUEUE_MISSING', `queue ${name} does not exist (no ${join(dir, SETTINGS_FILE)})`, {
    path: dir,
  });
}

/** A name in a queue's folders that ddmq writes: a message, a temporary file, a settings file. */
export function isOurs(name: string): boolean {
  return (
    isMessageName(name) ||
    name === SETTINGS_FILE ||
    name === `${SETTINGS_FILE}.intermediate` ||
    name.startsWith(TEMP_PREFIX) ||
    isNfsSillyRename(name)
  );
}

/** A file of the queue's folders that ddmq wrote: a message (links and FIFOs under message names included, as they are moved aside), a temporary file, a settings file. A folder is never ours. */
export function isOursEntry(entry: fs.Dirent): boolean {
  return !entry.isDirectory() && isOurs(entry.name);
}

/** A folder's entries with their kinds; none if it is gone. */
export function listEntries(dir: string): fs.Dirent[] {
  try {
    return retryStale(() => fs.readdirSync(dir, { withFileTypes: true }));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw ioError(err, 'list', dir);
  }
}

/** Closes the folders of a pinned queue. */
export function unpin(pinned: PinnedQueue): void {
  closeAll(pinned.dir, pinned.sub);
}

/**
 * Whether someone other than this user (or root) can change a folder's entries: it is
 * theirs, or its group or others may write it. The sticky bit does not help: it stops
 * others renaming our entries, not making the ones we make later (delayed/, corrupt/)
 * first, and swapping their own at will.
 */
function othersCanWrite(stat: fs.Stats): boolean {
  const uid = process.getuid?.();
  if (uid === undefined) return true;
  if (stat.uid !== uid && stat.uid !== 0) return true;
  return (stat.mode & 0o022) !== 0;
}

/** The root's own stat, following a link there (the root may be one). */
function rootStat(root: string): fs.Stats {
  try {
    return retryStale(() => fs.statSync(root));
  } catch (err) {
    throw ioError(err, 'look up', root);
  }
}

function closeAll(dir: OpenFolder, sub: Record<Subfolder, OpenFolder | null>): void {
  for (const name of SUBFOLDERS) sub[name]?.close();
  dir.close();
}
