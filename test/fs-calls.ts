/**
 * A recorder of the file-system calls that make a write durable (opens, data syncs, folder
 * syncs, renames, unlinks), made by replacing node:fs's functions for the library, and the
 * check that one message file became durable in the right order. Shared by
 * test/durable.test.ts and test/broker.test.ts.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { basename, dirname } from 'node:path';
import { patchFs } from './helpers.js';

export type Event =
  | { op: 'open'; fd: number; path: string }
  | { op: 'datasync-done'; path: string }
  | { op: 'dirsync-start'; path: string; folder: string; id: number }
  | { op: 'dirsync-done'; path: string; folder: string; id: number }
  | { op: 'rename'; from: string; to: string; folder: string }
  | { op: 'unlink'; path: string }
  | { op: 'returned'; what: string };

/** Records the calls that matter for durability until stop() is called. */
export function recordCalls() {
  const events: Event[] = [];
  const paths = new Map<number, string>();
  let dirSyncs = 0;
  const isDir = (path: string | undefined) => path !== undefined && fs.statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  // A folder by its identity: pinned folders are reached through /proc/self/fd/N paths.
  const folderOf = (st: fs.Stats) => `${st.dev}:${st.ino}`;
  const restores = [
    patchFs('openSync', (orig) => ((path: fs.PathLike, ...rest: unknown[]) => {
      const fd = (orig as (...a: unknown[]) => number)(path, ...rest);
      paths.set(fd, String(path));
      events.push({ op: 'open', fd, path: String(path) });
      return fd;
    }) as typeof fs.openSync),
    patchFs('fdatasync', (orig) => ((fd: number, cb: fs.NoParamCallback) =>
      orig(fd, (err) => {
        if (err === null) events.push({ op: 'datasync-done', path: paths.get(fd)! });
        cb(err);
      })) as typeof fs.fdatasync),
    patchFs('fdatasyncSync', (orig) => ((fd: number) => {
      orig(fd);
      events.push({ op: 'datasync-done', path: paths.get(fd)! });
    }) as typeof fs.fdatasyncSync),
    patchFs('fsync', (orig) => ((fd: number, cb: fs.NoParamCallback) => {
      const path = paths.get(fd)!;
      if (!isDir(path)) return orig(fd, cb);
      const id = ++dirSyncs;
      const folder = folderOf(fs.fstatSync(fd));
      events.push({ op: 'dirsync-start', path, folder, id });
      // A folder sync takes a while on a disk (not on tmpfs): callers arrive while it runs.
      setTimeout(() =>
        orig(fd, (err) => {
          if (err === null) events.push({ op: 'dirsync-done', path, folder, id });
          cb(err);
        }), 20);
    }) as typeof fs.fsync),
    patchFs('fsyncSync', (orig) => ((fd: number) => {
      const path = paths.get(fd)!;
      orig(fd);
      if (isDir(path)) {
        const id = ++dirSyncs;
        const folder = folderOf(fs.fstatSync(fd));
        events.push({ op: 'dirsync-start', path, folder, id }, { op: 'dirsync-done', path, folder, id });
      } else events.push({ op: 'datasync-done', path });
    }) as typeof fs.fsyncSync),
    patchFs('renameSync', (orig) => ((from: fs.PathLike, to: fs.PathLike) => {
      orig(from, to);
      events.push({ op: 'rename', from: String(from), to: String(to), folder: folderOf(fs.statSync(dirname(String(to)))) });
    }) as typeof fs.renameSync),
    patchFs('unlinkSync', (orig) => ((path: fs.PathLike) => {
      orig(path);
      events.push({ op: 'unlink', path: String(path) });
    }) as typeof fs.unlinkSync),
  ];
  return {
    events,
    mark(what: string) {
      events.push({ op: 'returned', what });
    },
    stop() {
      for (const r of restores.reverse()) r();
    },
  };
}

/** Where a message named `name` became durable, checked against the events: the index of each step. */
export function assertDurable(events: Event[], name: string, returned: string) {
  const rename = events.findIndex((e) => e.op === 'rename' && basename(e.to) === name);
  assert.ok(rename >= 0, `${name} was renamed into place`);
  const { from, to, folder } = events[rename] as Extract<Event, { op: 'rename' }>;
  const synced = events.findIndex((e) => e.op === 'datasync-done' && e.path === from);
  assert.ok(synced >= 0 && synced < rename, `${name}: its data was synced before the rename`);
  const dir = dirname(to);
  const end = events.findIndex((e) => e.op === 'returned' && e.what === returned);
  assert.ok(end > rename, `${name}: the call returned after the rename`);
  const dirSynced = events.some(
    (e, i) =>
      e.op === 'dirsync-done' &&
      e.folder === folder &&
      i < end &&
      events.findIndex((s) => s.op === 'dirsync-start' && s.id === e.id) > rename,
  );
  assert.ok(dirSynced, `${name}: a sync of ${basename(dir)}/ that began after the rename ended before the call returned`);
  return { rename, end };
}
