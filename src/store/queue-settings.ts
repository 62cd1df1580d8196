/**
 * A queue's settings as its parts read them: from the broker's cache, without a promise on
 * the per-message path when they are cached, and the two settings the parts consult
 * between reads (group_shared for folders made on the way, history for task records).
 */
import type { Settings } from '../format/settings.js';
import type { SettingsSource } from './host.js';

export class QueueSettings {
  /** The group_shared setting as last read, for folders made on the way. */
  groupShared = false;
  /** The history setting as last read: whether ack, nack and release leave task records. */
  private history = true;

  constructor(
    private readonly source: SettingsSource,
    private readonly queue: string,
  ) {}

  async get(): Promise<Settings> {
    const settings = this.source.cached(this.queue) ?? (await this.source.settings(this.queue));
    this.groupShared = settings.group_shared;
    this.history = settings.history;
    return settings;
  }

  /** The settings, without a promise when they are cached (the hot path of every message). */
  now(): Settings | Promise<Settings> {
    const cached = this.source.cached(this.queue);
    if (cached === undefined) return this.get();
    this.groupShared = cached.group_shared;
    this.history = cached.history;
    return cached;
  }

  /** Whether task records are kept: the history setting, as cached (no I/O on the per-message path). */
  recording(): boolean {
    const cached = this.source.cached(this.queue);
    return cached !== undefined ? cached.history : this.history;
  }
}
