/**
 * What a Queue needs from the broker that opened it, as a few narrow pieces: each part of
 * a queue is handed only the pieces it uses, and none of them knows the Broker (so no
 * import runs back up from a queue to its broker).
 */
import type { DdmqError } from '../format/errors.js';
import type { Message } from '../format/message.js';
import type { TaskRecord } from '../format/records.js';
import { systemTimers, type Timers } from './timers.js';
import type { Settings } from '../format/settings.js';

/** The store options the broker was opened with (see BrokerOptions). */
export interface StoreConfig {
  /** The root folder. */
  readonly root: string;
  /** Create the root, and queues on publish/consume, when they are missing. */
  readonly create: boolean;
  /** Forces fsync on or off, over the `fsync` setting. */
  readonly fsync: boolean | undefined;
  /** Keep the queue's folders pinned for the per-message calls even in a tree only this user can write. */
  readonly pinFolders: boolean;
  /** Milliseconds between listings while a consumer still has names in hand (the floor). */
  readonly listingIntervalMs: number;
  /** Milliseconds between the automatic cleans that consume does. */
  readonly cleanIntervalMs: number;
  /** Longest polling interval of a waiting consumer, in ms. */
  readonly pollIntervalMs: number;
  /** Whether waiting consumers use file-change notification. */
  readonly notify: boolean;
  /** What a waiting consumer polls and times out with. */
  readonly timers: Timers;
}

/** The broker's clock. */
export interface Clock {
  /** Epoch milliseconds: the file server's clock where it is in use (server-clock.ts), else this host's; replaceable in tests. */
  now(): number;
  /** The default `expiry_grace` in force, in seconds: smaller where the file server's clock is in use. */
  grace(): number;
}

/** Where warnings and log lines go. */
export interface Reporter {
  /** Reports a problem that does not stop the call (the broker's onWarning). */
  warn(warning: DdmqError): void;
  /** Whether log() goes anywhere: the per-message lines are not even made when not. */
  readonly logging: boolean;
  /** A log line (the broker's log option). */
  log(level: 'info' | 'debug', text: string): void;
}

/** The settings in force for a queue, layered and cached by the broker. */
export interface SettingsSource {
  /** The settings in force for a queue. */
  settings(queue: string): Promise<Settings>;
  /** The same without a promise, when they are cached; else undefined. */
  cached(queue: string): Settings | undefined;
}

/** Writes a message into another queue (made if missing): where dead letters go. */
export interface DeadLetterSink {
  /** Writes `msg` as a new ready message of `queue`; returns its file name. */
  put(queue: string, msg: Message): Promise<string>;
}

/** Where a queue's task records go. */
export interface RecordSink {
  /** Keeps a task record (buffered; see records.ts). */
  record(record: Omit<TaskRecord, 'host' | 'pid'>): void;
  /** Bounds the queue's task records (history_max_age, history_max_bytes); called by clean. */
  prune(queue: string, settings: Settings): void;
}

/** Everything a Queue is given by its broker. */
export interface QueueContext {
  /** The broker's store options. */
  readonly config: StoreConfig;
  /** The broker's clock. */
  readonly clock: Clock;
  /** Where warnings and log lines go. */
  readonly report: Reporter;
  /** The settings of the queues. */
  readonly settings: SettingsSource;
  /** Where dead letters go. */
  readonly deadLetters: DeadLetterSink;
  /** Where task records go. */
  readonly records: RecordSink;
}

/** A Reporter over the broker's onWarning and log options. */
export function reporter(
  onWarning: ((warning: DdmqError) => void) | undefined,
  logger: ((level: 'info' | 'debug', text: string) => void) | undefined,
): Reporter {
  return {
    warn: onWarning ?? ((w) => process.emitWarning(w.message, { code: w.code })),
    logging: logger !== undefined,
    log: (level, text) => logger?.(level, text),
  };
}

/**
 * Options of `Broker.open`. Durations here are in milliseconds, and named so (`…Ms`); the
 * durations of the calls (leases, waits, delays) are in seconds.
 */
export interface BrokerOptions {
  /**
   * Create the root, and queues on publish/consume, when they are missing.
   * @default false
   */
  create?: boolean;
  /**
   * Force fsync on or off, over the `fsync` setting.
   * @default the `fsync` setting of each queue
   */
  fsync?: boolean;
  /**
   * Work through folders opened without following links (pinned) for every call, also in
   * a tree only this user can write (false: there, the per-message calls use plain paths
   * checked once a second, about a tenth cheaper on a fast disk; in a tree others can
   * write, they are always pinned). The environment variable DDMQ_PIN_FOLDERS=1 sets the
   * default to true (for the command line). See "Nothing outside the root" in the README.
   * @default false
   */
  pinFolders?: boolean;
  /**
   * Milliseconds a consumer may serve from its cached listing before it lists the folder
   * again. The real interval is max(this, 10 × the last listing's time).
   * @default 1000
   */
  listingIntervalMs?: number;
  /**
   * Milliseconds between the automatic cleans that consume does.
   * @default 60000
   */
  cleanIntervalMs?: number;
  /**
   * Longest interval, in milliseconds, at which a waiting consumer polls the folder.
   * Changes made on this host wake it at once through file-change notification; changes
   * made by other hosts on a network file system are seen within this interval, plus
   * the file system's own cache.
   * @default 1000
   */
  pollIntervalMs?: number;
  /**
   * Use file-change notification while waiting; false polls only.
   * @default true
   */
  notify?: boolean;
  /**
   * Milliseconds settings files are cached.
   * @default 2000
   */
  settingsTtlMs?: number;
  /**
   * Called with corrupt files moved aside and other problems that do not stop the call.
   * @default process.emitWarning
   */
  onWarning?: (warning: DdmqError) => void;
  /**
   * Called with what the broker does, for -v/-d output.
   * @default none
   */
  log?: (level: 'info' | 'debug', text: string) => void;
  /**
   * The clock, in epoch milliseconds (tests replace it to move time). When given, it is
   * used as it is: the file server's clock is not measured (see `serverClock`).
   * @default Date.now, corrected to the file server's clock (see `serverClock`)
   */
  now?: () => number;
  /**
   * Take every time the tree holds and judges (a lease's expiry, a delayed message's due
   * time, task records, presence files) on the file server's clock, measured from the
   * modification time it stamps on a small temporary file this client writes in the
   * folder of the queue in use: at first need, then every 10 minutes and when this host's
   * clock steps. Hosts whose clocks disagree then still agree on when a lease runs out,
   * and the default `expiry_grace` is 5 s instead of 30 s. Where the probe cannot be
   * written (a read-only tree) or the stamps are not a usable clock, this host's clock is
   * used, with one warning, and the default grace stays 30 s. False: always this host's
   * clock. Ignored when `now` is given. The environment variable DDMQ_SERVER_CLOCK=0 sets
   * the default to false (for the command line). See "Clocks" in the README.
   * @default true
   */
  serverClock?: boolean;
  /**
   * The timers a waiting consume polls and times out with; tests pass timers they move by hand.
   * @default the real ones, on the monotonic clock
   */
  timers?: Timers;
}

/** The store options of a broker opened with these options, the defaults filled in. */
export function storeConfig(root: string, options: BrokerOptions): StoreConfig {
  return {
    root,
    create: options.create ?? false,
    fsync: options.fsync,
    pinFolders: options.pinFolders ?? process.env.DDMQ_PIN_FOLDERS === '1',
    listingIntervalMs: options.listingIntervalMs ?? 1000,
    cleanIntervalMs: options.cleanIntervalMs ?? 60_000,
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    notify: options.notify ?? true,
    timers: options.timers ?? systemTimers,
  };
}
