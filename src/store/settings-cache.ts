/**
 * The settings files of a root (ROOT/ddmq.yaml) and of its queues (ROOT/QUEUE/ddmq.yaml),
 * read through folders opened without following links, cached for `ttl` ms, and layered
 * (defaults < root < queue); and the one place they are written.
 */
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { DdmqError } from '../format/errors.js';
import { checkQueueName } from '../format/names.js';
import {
  checkSetting,
  isSettingKey,
  layerSettings,
  parseSettingsText,
  type Settings,
  type SettingsLayer,
  stringifySettings,
} from '../format/settings.js';
import { inQueueFolder, queueMissing, SETTINGS_FILE } from './folders.js';
import { readRegularFile } from './fsx.js';
import { ensureDir, writeFileAtomic } from './fs-write.js';
import type { Clock, SettingsSource } from './host.js';

interface CachedLayer {
  layer: SettingsLayer;
  readAt: number;
}

/** A root's settings files, cached and layered; and the one place they are written (see the top of this file). */
export class SettingsCache implements SettingsSource {
  /** Settings files by queue name; '' is the root's. */
  private readonly layers = new Map<string, CachedLayer>();
  /** Layered settings by queue, with the file layers they were made of. */
  private readonly layered = new Map<string, { settings: Settings; root: CachedLayer; own: CachedLayer; grace: number }>();

  constructor(
    private readonly root: string,
    /** Milliseconds settings files are cached. */
    private readonly ttl: number,
    /** The broker's fsync option, for writing settings files. */
    private readonly fsync: boolean | undefined,
    private readonly clock: Clock,
  ) {}

  /** The settings in force for a queue (defaults < root < queue), or for the root. */
  async settings(queue?: string): Promise<Settings> {
    if (queue !== undefined) {
      const cached = this.cached(checkQueueName(queue));
      if (cached !== undefined) return cached;
    }
    const root = await this.layer('');
    if (queue === undefined) return layerSettings(this.clockDefaults(), root);
    return layerSettings(this.clockDefaults(), root, await this.layer(checkQueueName(queue)));
  }

  /**
   * A queue's settings without I/O or a promise, when both files were read less than
   * ttl ago; undefined otherwise. Publish and consume call it for every message.
   */
  cached(queue: string): Settings | undefined {
    if (queue === '') return undefined; // '' is the root's own layer, not a queue
    const now = this.clock.now();
    const root = this.layers.get('');
    const own = this.layers.get(queue);
    if (!root || !own || now - root.readAt >= this.ttl || now - own.readAt >= this.ttl) return undefined;
    const grace = this.clock.grace();
    const memo = this.layered.get(queue);
    if (memo && memo.root === root && memo.own === own && memo.grace === grace) return memo.settings;
    const settings = layerSettings({ expiry_grace: grace }, root.layer, own.layer);
    this.layered.set(queue, { settings, root, own, grace });
    return settings;
  }

  /** The root's settings as last read, without I/O (the defaults if it was never read). */
  rootNow(): Settings {
    return layerSettings(this.clockDefaults(), this.layers.get('')?.layer);
  }

  /** The defaults that depend on the clock in force: expiry_grace (a file that sets it wins). */
  private clockDefaults(): SettingsLayer {
    return { expiry_grace: this.clock.grace() };
  }

  /** Forgets what a queue's file said (the queue was deleted, or is to be read again). */
  forget(queue: string): void {
    this.layers.delete(queue);
  }

  /**
   * Changes settings in the root's ('') or a queue's ddmq.yaml, written atomically. A value
   * of null removes the key, so that the layer above applies again. Returns the new file.
   */
  async set(key: string, changes: Record<string, unknown>): Promise<SettingsLayer> {
    const source = key === '' ? 'the root settings' : `the settings of queue ${key}`;
    for (const [k, v] of Object.entries(changes)) if (isSettingKey(k) && v !== null) checkSetting(k, v, source);
    if (key !== '') checkNotOwnDeadLetter(key, changes.dead_letter);
    const next: SettingsLayer = { ...(await this.layer(key, true)) };
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === undefined) delete next[k];
      else Object.defineProperty(next, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    const shared = layerSettings(key === '' ? next : await this.layer(''), key === '' ? undefined : next).group_shared;
    const text = await stringifySettings(next);
    const options = { fsync: this.fsync ?? false, groupShared: shared };
    if (key === '') writeFileAtomic(this.root, SETTINGS_FILE, text, options);
    else inQueueFolder(this.root, key, (at) => writeFileAtomic(at, SETTINGS_FILE, text, options));
    this.layers.set(key, { layer: next, readAt: this.clock.now() });
    // A root made shared must let the group make queues in it too.
    if (key === '' && next.group_shared === true) ensureDir(fs.realpathSync(this.root), { groupShared: true }); // the root may be a link: the user named it
    return next;
  }

  /** What one settings file says ('' the root's), from the cache unless `fresh` or older than ttl. */
  async layer(queue: string, fresh = false): Promise<SettingsLayer> {
    const cached = this.layers.get(queue);
    const now = this.clock.now();
    if (!fresh && cached && now - cached.readAt < this.ttl) return cached.layer;
    const path = join(this.root, queue, SETTINGS_FILE);
    // A queue's file is read through its folder opened without following a link.
    const text = queue === '' ? readRegularFile(path) : inQueueFolder(this.root, queue, (at) => readRegularFile(at + sep + SETTINGS_FILE), null);
    if (text === null) {
      this.layers.delete(queue);
      if (queue === '') {
        throw new DdmqError('ROOT_UNINITIALISED', `root folder ${this.root} is not initialised: ${path} is gone`, {
          path,
        });
      }
      throw queueMissing(queue, join(this.root, queue));
    }
    const layer = await parseSettingsText(text, path);
    this.layers.set(queue, { layer, readAt: now });
    return layer;
  }
}

/**
 * A queue's own dead_letter may not name itself: its dead letters would be dropped. (One
 * set in the root's file may name a queue, which then drops its own: it is the last stop.)
 */
export function checkNotOwnDeadLetter(queue: string, deadLetter: unknown): void {
  if (deadLetter === queue) {
    throw new DdmqError(
      'INVALID_SETTING',
      `invalid setting "dead_letter" for queue ${queue}: a queue cannot be its own dead-letter queue (its dead letters would be dropped)`,
    );
  }
}
