/**
 * The queues of a root as folders: which entries are queues (or stand where one would and
 * are not usable as one), and making and deleting them. A queue is complete once its
 * ddmq.yaml is there: it is written last when a queue is made, removed first when deleted.
 */
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { DdmqError, isDdmqError } from '../format/errors.js';
import { checkQueueName, isQueueName } from '../format/names.js';
import { checkSetting, isSettingKey, type Settings, type SettingsLayer, stringifySettings } from '../format/settings.js';
import {
  checkQueueFolders,
  inQueueFolder,
  isOurs,
  isOursEntry,
  listEntries,
  QueueFolders,
  queueMissing,
  SETTINGS_FILE,
  SUBFOLDERS,
  WORK_DIR,
} from './folders.js';
import { errnoOf, ioError, isNfsSillyRename, isRealDir, isRealFile, listIfExists, removeDirRetrying, retryStale, unlinkIfExists } from './fsx.js';
import { createFileIfMissing, ensureDir, makeDirs } from './fs-write.js';
import type { Reporter } from './host.js';
import { checkNotOwnDeadLetter, type SettingsCache } from './settings-cache.js';

/** A queue of the root, as `Broker.queueProblems` lists it. */
export interface QueueEntry {
  /** The queue's name. */
  name: string;
  /** What makes it unusable as a queue, if anything. */
  problem?: DdmqError;
}

export class RootQueues {
  constructor(
    private readonly root: string,
    private readonly settings: SettingsCache,
    /** The broker's fsync option, for the new queue's ddmq.yaml. */
    private readonly fsync: boolean | undefined,
    private readonly report: Reporter,
  ) {}

  /**
   * The entries of the root that are queues, or stand where a queue would and are not
   * usable as one (a link in place of a queue folder or its ddmq.yaml): those carry the
   * problem, so that commands over every queue can report them and go on with the rest.
   */
  entries(): QueueEntry[] {
    const names = listIfExists(this.root);
    if (names === null) throw new DdmqError('ROOT_MISSING', `root folder ${this.root} does not exist`, { path: this.root });
    const out: QueueEntry[] = [];
    for (const name of names.filter(isQueueName).sort()) {
      try {
        if (this.state(name) === 'queue') {
          checkQueueFolders(this.root, name);
          out.push({ name });
        }
      } catch (err) {
        if (!isDdmqError(err)) throw err;
        out.push({ name, problem: err });
      }
    }
    return out;
  }

  /** The named queues, each with the problem that makes it unusable, if any (a missing queue, a link). */
  problems(names: string[]): QueueEntry[] {
    return names.map((name) => {
      try {
        if (this.state(checkQueueName(name)) === 'none') return { name, problem: queueMissing(name, join(this.root, name)) };
        checkQueueFolders(this.root, name);
        return { name };
      } catch (err) {
        if (!isDdmqError(err)) throw err;
        return { name, problem: err };
      }
    });
  }

  /**
   * 'queue' for a real folder with a ddmq.yaml file, 'none' if either is missing; a link
   * (or anything else) in place of either is UNSAFE_PATH, and a failing look-up is IO:
   * neither may read as "missing", or a caller would go on to create what is there.
   */
  state(name: string): 'queue' | 'none' {
    const dir = join(this.root, name);
    if (!isRealDir(dir)) return 'none';
    return isRealFile(join(dir, SETTINGS_FILE)) ? 'queue' : 'none';
  }

  /**
   * Creates a queue; false if it existed (its settings are then left alone: a ddmq.yaml
   * is only ever created where there is none, never replaced). Its ddmq.yaml holds only
   * the given settings that differ from the root's, so that later changes to the root
   * reach it.
   */
  async create(name: string, settings: Partial<Settings> = {}): Promise<boolean> {
    checkQueueName(name);
    for (const [k, v] of Object.entries(settings)) if (isSettingKey(k)) checkSetting(k, v, `the settings for queue ${name}`);
    checkNotOwnDeadLetter(name, settings.dead_letter);
    if (this.state(name) === 'queue') {
      checkQueueFolders(this.root, name); // a link planted in it is reported, not passed over
      return false;
    }
    const inherited = await this.settings.settings();
    const own: SettingsLayer = {};
    for (const [k, v] of Object.entries(settings)) {
      if (v !== undefined && (!isSettingKey(k) || inherited[k] !== v)) Object.assign(own, { [k]: v });
    }
    const groupShared = (settings.group_shared ?? inherited.group_shared) === true;
    const text = await stringifySettings(own);
    ensureDir(join(this.root, name), { groupShared });
    const created = inQueueFolder(this.root, name, (at) => {
      ensureDir(at + sep + WORK_DIR, { groupShared });
      // The marker goes last: a queue with a ddmq.yaml is complete.
      return createFileIfMissing(at, SETTINGS_FILE, text, { fsync: this.fsync ?? false, groupShared });
    });
    if (created) this.report.log('info', `created queue ${name}`);
    return created;
  }

  /**
   * Deletes a queue and all its messages. Refuses (FOREIGN_FILES) before deleting anything
   * if the folder holds files ddmq did not write, and (UNSAFE_PATH) if the queue folder,
   * a subfolder or its ddmq.yaml is a link: everything is done through the folders opened
   * without following links (folders.ts), so nothing outside the queue can be reached.
   * `forget` is called once its marker is gone, to drop what this process holds of it.
   */
  async delete(name: string, forget: () => void): Promise<void> {
    checkQueueName(name);
    const folders = new QueueFolders(this.root, name);
    const dir = folders.dir;
    await folders.withPinned(async (pinned) => {
      if (pinned === null) throw queueMissing(name, dir);
      // A folder without its ddmq.yaml is finished off only if something of ddmq is left in
      // it (the original's delete stops at delayed/ or corrupt/, after removing the marker):
      // an empty folder, or one of someone else's, is not a queue.
      if (!isRealFile(pinned.paths.dir + sep + SETTINGS_FILE)) {
        const left = listEntries(pinned.paths.dir);
        if (left.length === 0 || !left.every((e) => (SUBFOLDERS as readonly string[]).includes(e.name) || isOursEntry(e))) {
          throw queueMissing(name, dir);
        }
        this.report.log('info', `finishing the deletion of queue ${name}: its ddmq.yaml is gone, only ddmq's own files are left`);
      }
      const foreign: string[] = [];
      for (const entry of listEntries(pinned.paths.dir)) {
        if ((SUBFOLDERS as readonly string[]).includes(entry.name)) continue; // opened by pin(): real folders
        if (!isOursEntry(entry)) foreign.push(join(dir, entry.name));
      }
      for (const sub of SUBFOLDERS) {
        const folder = pinned.sub[sub];
        if (folder) for (const entry of listEntries(folder.at)) if (!isOursEntry(entry)) foreign.push(join(folder.path, entry.name));
      }
      if (foreign.length > 0) {
        const shown = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? `, and ${foreign.length - 5} more` : '');
        throw new DdmqError(
          'FOREIGN_FILES',
          `not deleting queue ${name}: it holds files ddmq did not write (${shown}); move them away first`,
          { path: dir },
        );
      }
      // The marker goes first, so that other clients stop using the queue.
      unlinkIfExists(pinned.paths.dir + sep + SETTINGS_FILE);
      forget();
      const folderAts = [...SUBFOLDERS.map((sub) => pinned.sub[sub]?.at).filter((at) => at !== undefined), pinned.paths.dir];
      for (let attempt = 1; ; attempt++) {
        for (const at of folderAts) {
          for (const n of listIfExists(at) ?? []) if (isOurs(n) && !isNfsSillyRename(n)) unlinkIfExists(at + sep + n);
        }
        try {
          // rmdir does not follow a link: a subfolder swapped for one fails here (ENOTDIR).
          for (const sub of SUBFOLDERS) if (pinned.sub[sub]) await removeDirRetrying(pinned.paths.dir + sep + sub);
          break;
        } catch (err) {
          // RACE: a client that published while we deleted left a new file: go round again.
          if (attempt >= 5 || (isDdmqError(err, 'IO') && err.osCode !== 'ENOTEMPTY')) throw err;
        }
      }
    });
    await removeDirRetrying(dir);
    this.report.log('info', `deleted queue ${name}`);
  }
}

/**
 * Checks that the root is an initialised folder: ROOT_MISSING or ROOT_UNINITIALISED, unless
 * `create`, which makes what is missing. The root itself may be a link: the user named it.
 * Nothing below it is followed.
 */
export function prepareRoot(root: string, create: boolean): void {
  let kind = rootKind(root);
  if (kind === null) {
    if (!create) {
      throw new DdmqError('ROOT_MISSING', `root folder ${root} does not exist (create it with -f / { create: true })`, {
        path: root,
      });
    }
    makeDirs(root);
    kind = rootKind(root);
  }
  if (kind !== 'dir') {
    throw new DdmqError('ROOT_MISSING', `root ${root} is not a folder`, { path: root });
  }
  if (!isRealFile(join(root, SETTINGS_FILE))) {
    if (!create) {
      throw new DdmqError(
        'ROOT_UNINITIALISED',
        `root folder ${root} is not initialised: it has no ${SETTINGS_FILE} (initialise it with -f / { create: true })`,
        { path: root },
      );
    }
    createFileIfMissing(root, SETTINGS_FILE, '', { fsync: false });
  }
}

/** What the root is, following a link there (the root may be one). */
function rootKind(root: string): 'dir' | 'other' | null {
  try {
    return retryStale(() => fs.statSync(root)).isDirectory() ? 'dir' : 'other';
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') return 'other';
    throw ioError(err, 'open root folder', root);
  }
}
