/**
 * Settings: defaults, overridden by ROOT/ddmq.yaml, overridden by QUEUE/ddmq.yaml,
 * overridden by what one call passes. Known keys are checked for type and range;
 * unknown keys are kept (another tool may use them) and otherwise ignored.
 */
import { DdmqError } from './errors.js';
import { describe } from './names.js';

/**
 * Every setting of a queue, as in its ddmq.yaml (snake_case keys, the original tool's
 * names). Durations here are in seconds, as in the files.
 */
export interface Settings {
  /** Seconds a consumed message may stay unacknowledged before it expires. */
  message_timeout: number;
  /** Priority of a published message; lower is served first. */
  priority: number;
  /** Nacked and expired messages are requeued; false: they are dropped. */
  requeue: boolean;
  /** Priority that requeued messages get. */
  requeue_prio: number;
  /** Epoch second of the last clean by the original tool (a hint only; ddmq never writes it). */
  cleaned: number;
  /** fsync each message file before its rename and the folder after (slower, survives power loss). */
  fsync: boolean;
  /**
   * Seconds past a lease's expiry before a cleaner takes the message back, so that a host
   * whose clock runs up to this much ahead (or behind) does not take leases others still hold.
   */
  expiry_grace: number;
  /** Give the group write access to every folder and file ddmq makes (setgid folders), for a project group. */
  group_shared: boolean;
  /**
   * A queue that takes the messages that are not requeued (past their requeue limit, or
   * with requeue off), with their history, instead of dropping them; null: drop.
   */
  dead_letter: string | null;
  /** How many times a message may be requeued when the message itself does not say; null: unlimited. */
  requeue_limit: number | null;
  /** Seconds a failed (nacked) message waits, in delayed/, before it is ready again; 0: at once. */
  retry_delay: number;
  /** The factor that wait grows by with each further failure of the message. */
  retry_backoff: number;
  /** The longest such wait, in seconds. */
  retry_delay_max: number;
  /** Keep a record of every finished task under ROOT/.ddmq/records/ (for `ddmq stats`); false: none. */
  history: boolean;
  /** Seconds task records are kept: whoever cleans drops record files last written longer ago. */
  history_max_age: number;
  /** Bytes of task records kept per queue: whoever cleans drops the oldest record files beyond it. */
  history_max_bytes: number;
}

/** What one settings file says: some settings, and keys ddmq does not know, kept as they are. */
export type SettingsLayer = Partial<Settings> & Record<string, unknown>;

/** The settings in force where no file sets them. */
export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  message_timeout: 600,
  priority: 999,
  requeue: true,
  requeue_prio: 0,
  cleaned: 0,
  fsync: false,
  expiry_grace: 30,
  group_shared: false,
  dead_letter: null,
  requeue_limit: null,
  retry_delay: 10,
  retry_backoff: 2,
  retry_delay_max: 600,
  history: true,
  history_max_age: 7 * 86400,
  history_max_bytes: 64 * 1024 * 1024,
});

/** The longest span of seconds ddmq takes anywhere (leases, delays, waits): ten years. */
export const MAX_SECONDS = 10 * 365 * 86400;

type Check = { test: (v: unknown) => boolean; expected: string };
const seconds: Check = {
  test: (v) => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= MAX_SECONDS,
  expected: `a whole number of seconds, from 1 to ${MAX_SECONDS} (ten years)`,
};
const secondsOrZero: Check = {
  test: (v) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_SECONDS,
  expected: `a whole number of seconds, from 0 to ${MAX_SECONDS} (ten years)`,
};
const count: Check = { test: (v) => Number.isSafeInteger(v) && (v as number) >= 0, expected: 'a non-negative whole number' };
const countOrNull: Check = { test: (v) => v === null || count.test(v), expected: 'a non-negative whole number, or null for no limit' };
const factor: Check = { test: (v) => typeof v === 'number' && v >= 1 && v <= 100, expected: 'a number from 1 to 100' };
const bool: Check = { test: (v) => typeof v === 'boolean', expected: 'true or false' };
const queueOrNull: Check = {
  test: (v) => v === null || (typeof v === 'string' && /^[A-Za-z0-9_-]{1,200}$/.test(v)),
  expected: 'a queue name (letters, digits, _ and -) or null',
};
const epoch: Check = { test: (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0, expected: 'a non-negative number' };

const CHECKS: Record<keyof Settings, Check> = {
  message_timeout: seconds,
  priority: count,
  requeue: bool,
  requeue_prio: count,
  cleaned: epoch,
  fsync: bool,
  expiry_grace: secondsOrZero,
  group_shared: bool,
  dead_letter: queueOrNull,
  requeue_limit: countOrNull,
  retry_delay: secondsOrZero,
  retry_backoff: factor,
  retry_delay_max: secondsOrZero,
  history: bool,
  history_max_age: seconds,
  history_max_bytes: count,
};

export const SETTING_KEYS = Object.keys(CHECKS) as (keyof Settings)[];

export function isSettingKey(key: string): key is keyof Settings {
  return Object.hasOwn(CHECKS, key);
}

/**
 * Checks a parsed settings object; `source` names the file or call it came from, and
 * `given(key)` the value's text as written there, for the error message.
 */
export function validateSettings(value: unknown, source: string, given?: (key: string) => string | undefined): SettingsLayer {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new DdmqError('INVALID_SETTING', `invalid settings in ${source}: expected a mapping of keys to values`, {
      path: source,
    });
  }
  const out: SettingsLayer = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (isSettingKey(key)) checkSetting(key, v, source, given?.(key));
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Checks one setting; `given` is its text as written, to show instead of the parsed value. */
export function checkSetting(key: keyof Settings, value: unknown, source: string, given?: string): void {
  const check = CHECKS[key];
  if (!check.test(value)) {
    throw new DdmqError(
      'INVALID_SETTING',
      `invalid setting "${key}" in ${source}: expected ${check.expected}, got ${given ?? describe(value)}`,
      { path: source },
    );
  }
}

/** Lays the layers over the defaults, later over earlier; undefined values do not count. */
export function layerSettings(...layers: (SettingsLayer | undefined)[]): Settings {
  const out: Settings = { ...DEFAULT_SETTINGS };
  for (const layer of layers) {
    if (!layer) continue;
    for (const key of SETTING_KEYS) {
      const v = layer[key];
      if (v !== undefined) (out as unknown as Record<string, unknown>)[key] = v;
    }
  }
  return out;
}

/**
 * Parses a ddmq.yaml text. Empty and "{}" files, the common case, skip the YAML parser
 * (and its load time). YAML 1.1 is used, as by the original's PyYAML, so `yes`/`no` are
 * booleans; aliases are capped, so a "billion laughs" file is an error, not a hang.
 */
export async function parseSettingsText(content: string | Uint8Array, source: string): Promise<SettingsLayer> {
  let text: string;
  try {
    text = typeof content === 'string' ? content : new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch {
    throw new DdmqError('INVALID_SETTING', `cannot read ${source}: it is not valid UTF-8`, { path: source });
  }
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === '{}') return {};
  const { isScalar, parseDocument } = await import('yaml');
  let value: unknown;
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: true, logLevel: 'error' });
    if (doc.errors.length > 0) throw doc.errors[0];
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // The first line says what and where ("... at line 2, column 1:"); the rest draws it.
    const why = ((err as Error).message ?? String(err)).split('\n')[0]!.replace(/:$/, '');
    throw new DdmqError('INVALID_SETTING', `cannot parse ${source} as YAML: ${why}`, { path: source, cause: err });
  }
  // An error names a value as written (".inf", "1e400"), not as parsed (Infinity).
  const given = (key: string) => {
    const node = doc.get(key, true);
    return isScalar(node) && typeof node.source === 'string' ? node.source : undefined;
  };
  return validateSettings(value, source, given);
}

/** The YAML text of a settings layer; an empty layer is "{}" so that it parses to a mapping. */
export async function stringifySettings(layer: SettingsLayer): Promise<string> {
  if (Object.keys(layer).length === 0) return '{}\n';
  const { stringify } = await import('yaml');
  return stringify(layer);
}
