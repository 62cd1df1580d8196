/**
 * Queue names and message file names: checks, encoding, parsing and their order.
 *
 *   ready:     PRIO.QNUM.ddmqID
 *   in flight: EXPIRY.PRIO.QNUM.ddmqID[TOKEN]     (in QUEUE/work/)
 *
 * Order is numeric: priority, then queue number read as "10 digits of whole seconds,
 * the rest a fraction" (the original tool writes str(time.time()) without its dot, of
 * varying length), then id. It is exact for digit strings of any length.
 */
import { DdmqError } from './errors.js';
import { randomBytes } from './random.js';

export const MAX_QUEUE_NAME_LENGTH = 200;
const QUEUE_NAME_RE = /^[A-Za-z0-9_-]+$/;
const READY_RE = /^(\d+)\.(\d+)\.ddmq([A-Za-z0-9]+)$/;
const IN_FLIGHT_RE = /^(\d+)\.(\d+)\.(\d+)\.ddmq([A-Za-z0-9]+)$/;
const OUR_ID_RE = /^[0-9a-f]{32}/;
/** The marker that makes a file name a message; temporary files never contain it. */
export const MESSAGE_MARK = '.ddmq';
/** The longest file name most file systems take. */
const MAX_FILE_NAME_LENGTH = 255;

/**
 * Checks a queue name.
 * @param name - the name to check
 * @returns the name, if it is a valid queue name
 * @throws {@link index!DdmqError} `INVALID_NAME` (empty, too long, or with characters a queue name may not have)
 */
export function checkQueueName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new DdmqError('INVALID_NAME', `invalid queue name ${describe(name)}: it must be a non-empty string`);
  }
  if (name.length > MAX_QUEUE_NAME_LENGTH) {
    throw new DdmqError(
      'INVALID_NAME',
      `invalid queue name ${describe(name)}: it has ${name.length} characters, at most ${MAX_QUEUE_NAME_LENGTH} are allowed`,
    );
  }
  if (!QUEUE_NAME_RE.test(name)) {
    throw new DdmqError(
      'INVALID_NAME',
      `invalid queue name ${describe(name)}: only letters A-Z a-z, digits, '_' and '-' are allowed`,
    );
  }
  return name;
}

export function isQueueName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_QUEUE_NAME_LENGTH && QUEUE_NAME_RE.test(name);
}

/** A ready message file's name, PRIORITY.QUEUENUMBER.ddmqID, taken apart. */
export interface ReadyName {
  /** The file name itself. */
  readonly name: string;
  /** Priority as a digit string (may exceed Number.MAX_SAFE_INTEGER in foreign files). */
  readonly priority: string;
  /** The publication order within a priority, as a digit string. */
  readonly queueNumber: string;
  /** The message's id. */
  readonly id: string;
}

/** An in-flight message file's name, EXPIRY.PRIORITY.QUEUENUMBER.ddmqID[TOKEN], taken apart. */
export interface InFlightName extends ReadyName {
  /** Epoch second at which the lease runs out. */
  readonly expiry: number;
  /** The part after the 32-digit id that makes this claim's name unique ('' if none). */
  readonly token: string;
}

/**
 * Takes a ready message file's name apart.
 * @param name - a file name
 * @returns its parts; null if it is not a ready message file's name
 */
export function parseReadyName(name: string): ReadyName | null {
  const m = READY_RE.exec(name);
  if (m === null) return null;
  return { name, priority: m[1]!, queueNumber: m[2]!, id: m[3]! };
}

/**
 * Takes an in-flight (or delayed: DUE.) message file's name apart.
 * @param name - a file name
 * @returns its parts; null if it is not an in-flight message file's name
 */
export function parseInFlightName(name: string): InFlightName | null {
  const m = IN_FLIGHT_RE.exec(name);
  if (m === null) return null;
  const idAndToken = m[4]!;
  // Our ids are 32 lowercase hex digits and a claim token follows them. Ids written by
  // others may have any length; then the whole rest is the id.
  const ours = idAndToken.length > 32 && OUR_ID_RE.test(idAndToken);
  return {
    name,
    expiry: Number(m[1]!),
    priority: m[2]!,
    queueNumber: m[3]!,
    id: ours ? idAndToken.slice(0, 32) : idAndToken,
    token: ours ? idAndToken.slice(32) : '',
  };
}

export function readyFileName(priority: number | string, queueNumber: string, id: string): string {
  return `${priority}.${queueNumber}${MESSAGE_MARK}${id}`;
}

/** The in-flight name of a claim: the expiry, the ready name, and the claim's token. */
export function inFlightFileName(expiry: number, readyName: string, token: string): string {
  return `${expiry}.${readyName}${token}`;
}

/** The ready name an in-flight name was claimed from (same priority, number and id). */
export function readyNameOf(inFlight: InFlightName): string {
  return readyFileName(inFlight.priority, inFlight.queueNumber, inFlight.id);
}

export function isMessageName(name: string): boolean {
  return name.includes(MESSAGE_MARK);
}

/**
 * The sort key of a ready file name, or null if the name is not one: a string whose
 * plain (code unit) order is the serving order, ending with the name itself. Digit runs
 * get a 3-digit length prefix after their leading zeros are cut, so shorter numbers sort
 * first; the fraction of the queue number loses its trailing zeros and is followed by a
 * space, which sorts below every digit, so 0.2 < 0.25 < 0.3.
 *
 * It is written out by hand, without a regular expression or objects, because a consumer
 * computes it for every name of a listing: 200,000 names for a deep queue.
 */
export function readyKeyOf(name: string): string | null {
  const n = name.length;
  let i = 0;
  while (i < n && isDigit(name.charCodeAt(i))) i++;
  const prioEnd = i;
  if (prioEnd === 0 || name.charCodeAt(i) !== 46) return null;
  const qStart = ++i;
  while (i < n && isDigit(name.charCodeAt(i))) i++;
  const qEnd = i;
  if (qEnd === qStart || !name.startsWith(MESSAGE_MARK, i)) return null;
  i += MESSAGE_MARK.length;
  if (i === n) return null;
  for (; i < n; i++) if (!isAlnum(name.charCodeAt(i))) return null;
  const secEnd = Math.min(qEnd, qStart + 10);
  let fracEnd = qEnd;
  while (fracEnd > secEnd && name.charCodeAt(fracEnd - 1) === 48) fracEnd--;
  return `${numberKey(name, 0, prioEnd)}${numberKey(name, qStart, secEnd)}.${name.slice(secEnd, fracEnd)} ${name}`;
}

/** The file name at the end of a key made by readyKeyOf. */
export function nameOfKey(key: string): string {
  return key.slice(key.indexOf(' ') + 1);
}

export function readySortKey(r: ReadyName): string {
  return readyKeyOf(r.name)!;
}

/**
 * The order consume takes ready messages in: priority, then queue number, as numbers of
 * any length.
 * @returns negative if `a` comes first, positive if `b` does, 0 if they are the same
 */
export function compareReady(a: ReadyName, b: ReadyName): number {
  const ka = readySortKey(a);
  const kb = readySortKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function numberKey(s: string, start: number, end: number): string {
  while (start < end && s.charCodeAt(start) === 48) start++;
  const len = end - start;
  return (len < 10 ? '00' : len < 100 ? '0' : '') + len + s.slice(start, end);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

export type MessageNameKind = 'ready' | 'in-flight';

/**
 * Checks a message file name given by a user (ack, nack, del_msg): it must match a
 * message pattern in full, which rules out '/', '..' and anything else that could leave
 * the queue folder.
 */
export function checkMessageFileName(name: unknown, allowed: readonly MessageNameKind[]): MessageNameKind {
  if (typeof name === 'string' && name.length <= MAX_FILE_NAME_LENGTH) {
    if (allowed.includes('in-flight') && IN_FLIGHT_RE.test(name)) return 'in-flight';
    if (allowed.includes('ready') && READY_RE.test(name)) return 'ready';
  }
  const patterns = allowed
    .map((k) => (k === 'ready' ? 'PRIO.QNUM.ddmqID' : 'EXPIRY.PRIO.QNUM.ddmqID'))
    .join(' or ');
  throw new DdmqError(
    'INVALID_NAME',
    `invalid message file name ${describe(name)}: expected a bare file name like ${patterns} (digits, dots, letters)`,
  );
}

/** A new message id: 32 lowercase hex digits (a random version-4 UUID without dashes, as uuid4().hex). */
export function newMessageId(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40; // version 4
  b[8] = (b[8]! & 0x3f) | 0x80; // variant 10
  return b.toString('hex');
}

/** A new claim token: 12 lowercase hex digits, so that no other claimer picks the same name. */
export function newClaimToken(): string {
  return randomBytes(6).toString('hex');
}

/** Quotes a value for an error message, cutting it short and showing control characters. */
export function describe(value: unknown): string {
  // JSON would show Infinity (a number too large, as 1e400 reads) and NaN as null.
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') return value === undefined ? 'undefined' : JSON.stringify(value) ?? String(value);
  const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value;
  return JSON.stringify(shown);
}
