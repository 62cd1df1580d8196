/**
 * Group commit: new files made durable with as few waits on the disk as the platform
 * allows. A durable write is: the data into a temporary file, the data synced, the file
 * renamed to its name, the folder synced. Done one file at a time, each file waits for
 * two disk flushes in turn. Here:
 *
 * - the data syncs of a batch (and of concurrent callers) run at once, on libuv's thread
 *   pool, so the disk takes them in one or a few flushes (a journal commits them together);
 * - the renames follow, in order, once every file's data is on disk, so a name never
 *   leads to a file whose data a power loss could take;
 * - the folder is synced once for everything renamed into it before the sync began, and
 *   concurrent callers share that sync: a caller waits for the sync under way, if it began
 *   after its renames, or for the next one, which starts as soon as that one ends.
 *
 * A caller alone (one file, no other commit under way in the process) takes the naive
 * order on the main thread: one data sync, the rename, one folder sync. Many callers at
 * once share the flushes, as a broker's confirms do. The added latency is at most one
 * folder sync (the one under way when a caller's renames are done).
 */
import * as fs from 'node:fs';
import { sep } from 'node:path';
import { newClaimToken } from '../format/names.js';
import { errnoOf, ioError, retryStale, TEMP_PREFIX } from './fsx.js';
import { addGroupAccess, folderCannotBeSynced, fsyncDir } from './fs-write.js';

/** A file written under a temporary name, still open for its sync. */
export interface StagedFile {
  fd: number;
  tmp: string;
  /** The folder it goes into, and its name there. */
  dir: string;
  name: string;
}

/**
 * Writes data into a new temporary file in `dir` (never replacing anything), kept open:
 * the first half of a durable write. On error nothing is left behind.
 */
export function stageFile(dir: string, name: string, data: string, groupShared: boolean): StagedFile {
  const tmp = `${dir}${sep}${TEMP_PREFIX}${process.pid}-${newClaimToken()}`;
  let fd: number;
  try {
    fd = retryStale(() => fs.openSync(tmp, 'wx', groupShared ? 0o666 : undefined));
  } catch (err) {
    throw ioError(err, 'write', dir + sep + name);
  }
  try {
    if (groupShared) addGroupAccess(tmp, 0o060, fd);
    fs.writeFileSync(fd, data);
  } catch (err) {
    discard({ fd, tmp, dir, name });
    throw ioError(err, 'write', dir + sep + name);
  }
  return { fd, tmp, dir, name };
}

/** Closes and removes a staged file that will not be committed. */
export function discard(file: StagedFile): void {
  try {
    fs.closeSync(file.fd);
  } catch {
    // closed already
  }
  try {
    fs.unlinkSync(file.tmp);
  } catch {
    // gone already; the error that matters is the caller's
  }
}

/**
 * Makes staged files durable under their names, in order: all data synced, then renamed
 * one by one, then each folder synced (shared with concurrent callers). Returns when all
 * of it is on disk. If a rename fails, the files before it stay committed (their folder
 * is still synced), the rest are removed, and the error says which file failed.
 */
export async function commitFiles(files: readonly StagedFile[]): Promise<void> {
  if (files.length === 0) return;
  committing++;
  try {
    // Callers in the same tick (Promise.all of publishes) all count themselves before this.
    await Promise.resolve();
    if (files.length === 1 && committing === 1) return commitAlone(files[0]!);
    return await commitTogether(files);
  } finally {
    committing--;
  }
}

/** Commits staged or under way in this process: a caller alone has nobody to share with. */
let committing = 0;

/**
 * One file with nobody to share its syncs with: the naive order on the main thread, with
 * no hops to the thread pool and back (each one a wake-up, which costs most on a busy
 * machine). It blocks the event loop for the two syncs, as a synchronous write does.
 */
function commitAlone(f: StagedFile): void {
  const final = f.dir + sep + f.name;
  try {
    fs.fdatasyncSync(f.fd);
  } catch (err) {
    discard(f);
    throw ioError(err, 'sync', final);
  }
  fs.closeSync(f.fd);
  try {
    retryStale(() => fs.renameSync(f.tmp, final));
  } catch (err) {
    unlinkQuietly(f.tmp);
    throw ioError(err, 'write', final);
  }
  fsyncDir(f.dir);
}

async function commitTogether(files: readonly StagedFile[]): Promise<void> {
  if (files.length > 4) startThreadPool();
  // Every sync is waited for (none left running on a descriptor closed meanwhile); the
  // files before the first that failed go on, as they would have one at a time.
  const synced = await Promise.allSettled(files.map((f) => dataSync(f)));
  const firstFailed = synced.findIndex((r) => r.status === 'rejected');
  let failure: unknown = firstFailed === -1 ? undefined : (synced[firstFailed] as PromiseRejectedResult).reason;
  const count = firstFailed === -1 ? files.length : firstFailed;
  for (const f of files.slice(count)) discard(f);
  for (const f of files.slice(0, count)) fs.closeSync(f.fd);
  const dirs = new Set<string>();
  let i = 0;
  for (; i < count; i++) {
    const f = files[i]!;
    try {
      retryStale(() => fs.renameSync(f.tmp, f.dir + sep + f.name));
    } catch (err) {
      failure = ioError(err, 'write', f.dir + sep + f.name);
      break;
    }
    dirs.add(f.dir);
  }
  for (const f of files.slice(i, count)) unlinkQuietly(f.tmp);
  try {
    await Promise.all([...dirs].map((d) => syncFolder(d)));
  } catch (err) {
    failure ??= err; // a failed rename or sync before it is the error that says most
  }
  if (failure !== undefined) throw failure;
}

function dataSync(f: StagedFile): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.fdatasync(f.fd, (err) => (err === null ? resolve() : reject(ioError(err, 'sync', f.dir + sep + f.name))));
  });
}

function unlinkQuietly(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch {
    // gone already
  }
}

/**
 * Per folder, the sync under way and the one that will follow it. A folder is known by
 * its device and inode, not its path: pinned folders are reached through descriptor
 * paths (/proc/self/fd/N) that differ from call to call, and a path may lead to another
 * folder once a queue is deleted and made again.
 */
const folders = new Map<string, FolderSync>();

/** Syncs a folder, sharing the sync with concurrent callers (see the top of this file). */
export function syncFolder(dir: string): Promise<void> {
  let key: string;
  try {
    const st = fs.statSync(dir);
    key = `${st.dev}:${st.ino}`;
  } catch (err) {
    return Promise.reject(ioError(err, 'sync folder', dir));
  }
  let f = folders.get(key);
  if (f === undefined) folders.set(key, (f = new FolderSync(key)));
  return f.sync(dir);
}

class FolderSync {
  private busy = false;
  /** The callers that came while a sync was under way: they share the next one. */
  private next: { dir: string; promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | null = null;

  constructor(private readonly key: string) {}

  /**
   * `dir`: the caller's path to the folder. It stays valid until the caller's promise
   * settles (a pinned folder is held open that long), so a round syncs through the path
   * of one of its own callers, never through that of a caller already gone.
   */
  sync(dir: string): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return this.run(dir);
    }
    if (this.next === null) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      this.next = { dir, promise, resolve, reject };
    }
    return this.next.promise;
  }

  private async run(dir: string): Promise<void> {
    try {
      await fsyncFolderNow(dir);
    } finally {
      const waiting = this.next;
      this.next = null;
      if (waiting === null) {
        this.busy = false;
        folders.delete(this.key);
      } else {
        this.run(waiting.dir).then(waiting.resolve, waiting.reject);
      }
    }
  }
}

/** One fsync of a folder, on the thread pool; a no-op where folders cannot be synced. */
function fsyncFolderNow(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let fd: number;
    try {
      fd = fs.openSync(dir, 'r');
    } catch (err) {
      return reject(ioError(err, 'sync folder', dir));
    }
    fs.fsync(fd, (err) => {
      fs.close(fd, () => {});
      if (err === null || folderCannotBeSynced(errnoOf(err))) resolve();
      else reject(ioError(err, 'sync folder', dir));
    });
  });
}

/** Threads in libuv's pool for the syncs, unless the program chose a number itself. */
export const SYNC_THREADS = 64;
let poolStarted = false;

/**
 * libuv reads UV_THREADPOOL_SIZE once, when its pool starts at the first task given to
 * it; four threads (the default) let only four syncs wait on the disk at a time. So the
 * size is set just before a first batch of syncs starts the pool, and taken out of the
 * environment again at once, so that child processes (a worker's tasks) do not inherit
 * it. Starting 64 threads takes a few to 20 ms, so a process that syncs a file at a time
 * does not: its first async call starts the usual 4.
 *
 * It works only where nothing used the pool before: in a CommonJS program (the ddmq
 * command is one), not in an ES module program, whose loading starts the pool. There
 * the size must come from the environment (the README says so).
 */
export function startThreadPool(): boolean {
  if (poolStarted) return false;
  poolStarted = true;
  if (process.env.UV_THREADPOOL_SIZE !== undefined) return false;
  process.env.UV_THREADPOOL_SIZE = String(SYNC_THREADS);
  try {
    fs.access(sep, () => {}); // the pool starts here, synchronously, reading the size
  } finally {
    delete process.env.UV_THREADPOOL_SIZE;
  }
  return true;
}
