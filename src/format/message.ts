/**
 * The message file: one JSON object with the original tool's keys (SPEC §3). Unknown
 * keys are kept, so a message read and written again loses nothing that another tool or
 * a newer version stored in it.
 */
import { isUtf8 } from 'node:buffer';
import { DdmqError } from './errors.js';
import type { InFlightName, ReadyName } from './names.js';

/** true/false: requeue or drop on nack and expiry; a number: requeue with that priority. */
export type Requeue = boolean | number;

/** The keys of SPEC §3, in the order we write them. */
export const MESSAGE_KEYS = [
  'message',
  'queue',
  'priority',
  'queue_number',
  'id',
  'filename',
  'timeout',
  'requeue',
  'requeue_counter',
  'requeue_limit',
] as const;
const KNOWN = new Set<string>(MESSAGE_KEYS);

/**
 * The fields of a message, as `new Message(fields)` takes them: the file's keys in
 * camelCase, and `extra` for the keys ddmq does not know.
 * @typeParam T - the payload's type (see {@link Message})
 */
export interface MessageFields<T = unknown> {
  /** The payload: a string, or any JSON value. */
  message: T;
  /** The queue it was published to (where its file is). */
  queue: string;
  /** Lower is served first. */
  priority: number;
  /** The publication order within a priority: 20 digits, increasing. */
  queueNumber: string;
  /** A random 32-hex-digit id, kept across requeues and dead letters. */
  id: string;
  /** The file's name: the ready name when published, the in-flight name once consumed. */
  filename: string;
  /**
   * This message's lease in seconds; null: the queue's `message_timeout`. The file's key
   * for it is `timeout`, the original tool's name.
   */
  lease: number | null;
  /** Requeue on nack and expiry (a number: with that priority); null: the queue's `requeue` setting decides. */
  requeue: Requeue | null;
  /** How many times it was requeued after a failure or an expired lease. */
  requeueCounter: number;
  /** How many requeues are allowed; null: unlimited. */
  requeueLimit: number | null;
  /** Keys of the file that ddmq does not know, kept as they were. */
  extra: Record<string, unknown>;
}

/**
 * A message as read from or written to its file. `publish` returns one (its `filename`
 * the ready name), `consume` returns them in flight (`filename` the in-flight name, which
 * `extend` updates); `ack`, `nack`, `release` and `extend` take one.
 *
 * @typeParam T - the payload's type. It is a promise made by the caller
 * (`consume<Task>('q')`), not checked at run time: ddmq gives back whatever JSON the file
 * holds, so validate payloads that come from untrusted publishers.
 */
export class Message<T = unknown> implements MessageFields<T> {
  message: T;
  queue: string;
  priority: number;
  queueNumber: string;
  id: string;
  filename: string;
  lease: number | null;
  requeue: Requeue | null;
  requeueCounter: number;
  requeueLimit: number | null;
  extra: Record<string, unknown>;
  /**
   * Set by publish for a message published with a delay: the epoch second it is ready.
   * Until then it waits in the queue's delayed/ folder as `DUE.` + its ready name.
   */
  due: number | undefined = undefined;
  /** Set by consume: the epoch ms this process took it (the start of its task record). */
  consumedAt: number | undefined = undefined;

  constructor(fields: MessageFields<T>) {
    this.message = fields.message;
    this.queue = fields.queue;
    this.priority = fields.priority;
    this.queueNumber = fields.queueNumber;
    this.id = fields.id;
    this.filename = fields.filename;
    this.lease = fields.lease;
    this.requeue = fields.requeue;
    this.requeueCounter = fields.requeueCounter;
    this.requeueLimit = fields.requeueLimit;
    this.extra = fields.extra;
  }

  /** The payload as text: itself if it is a string, else its JSON. */
  get text(): string {
    return typeof this.message === 'string' ? this.message : JSON.stringify(this.message) ?? '';
  }

  /** The JSON object of the file, snake_case keys as on disk, unknown keys included. */
  toJSON(): Record<string, unknown> {
    return {
      message: this.message,
      queue: this.queue,
      priority: this.priority,
      queue_number: this.queueNumber,
      id: this.id,
      filename: this.filename,
      timeout: this.lease,
      requeue: this.requeue,
      requeue_counter: this.requeueCounter,
      requeue_limit: this.requeueLimit,
      ...this.extra,
    };
  }
}

/**
 * The file's JSON. Two values mean something else to the original tool, which reads 0 as
 * "unset": `requeue_limit: 0` (it reads: unlimited) and `requeue: 0` (it reads: do not
 * requeue). They are written so that both tools read the same: a limit of 0 as
 * `requeue: false` (no requeue at all, which is what a limit of 0 allows), and a requeue
 * priority of 0 as `requeue: true` with the priority under `requeue_priority`.
 */
export function encodeMessage(msg: Message): string {
  if (msg.requeueLimit !== 0 && msg.requeue !== 0) return JSON.stringify(msg);
  const fields = msg.toJSON();
  if (msg.requeueLimit === 0) {
    fields.requeue = false;
    fields.requeue_limit = null;
  } else {
    fields.requeue = true;
    fields.requeue_priority = 0;
  }
  return JSON.stringify(fields);
}

/** Where encodeMessage puts a requeue priority of 0. */
const REQUEUE_PRIORITY_KEY = 'requeue_priority';

/**
 * Decodes a message file. Keys the original always writes but that are missing here
 * are taken from the file name and folder; keys of the wrong type make the file corrupt.
 */
export function decodeMessage(
  content: string | Uint8Array,
  context: { queue: string; file: ReadyName | InFlightName; path: string },
): Message {
  let data: unknown;
  let text: string;
  if (typeof content === 'string') text = content;
  else if (isUtf8(content)) text = (Buffer.isBuffer(content) ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength)).toString('utf8');
  else throw corrupt(context.path, 'it is not valid UTF-8');
  if (text.length > 2 * MAX_NESTING && nestingDepth(text) > MAX_NESTING) {
    // JSON.parse takes any depth, but JSON.stringify overflows the stack: such a message
    // could be read but never requeued or printed.
    throw corrupt(context.path, `it is nested deeper than ${MAX_NESTING} levels`);
  }
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw corrupt(context.path, `it is not valid JSON (${(err as Error).message})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw corrupt(context.path, 'it is not a JSON object');
  }
  const obj = data as Record<string, unknown>;
  if (!('message' in obj)) throw corrupt(context.path, 'it has no "message" key');
  const path = context.path;
  const file = context.file;
  let extra: Record<string, unknown> | undefined;
  let requeue = optional(obj.requeue, path, 'requeue', isRequeue, 'a boolean, a non-negative integer or null') ?? null;
  for (const k in obj) {
    if (KNOWN.has(k)) continue;
    if (k === REQUEUE_PRIORITY_KEY && requeue === true && isCount(obj[k])) {
      requeue = obj[k];
      continue;
    }
    extra ??= {};
    // defineProperty: a key "__proto__" stays a plain key
    Object.defineProperty(extra, k, { value: obj[k], enumerable: true, writable: true, configurable: true });
  }
  return new Message({
    message: obj.message,
    queue: optional(obj.queue, path, 'queue', isString, 'a string') ?? context.queue,
    priority: optional(obj.priority, path, 'priority', isCount, 'a non-negative integer') ?? safePriority(file, path),
    queueNumber: queueNumberOf(obj.queue_number, path) ?? file.queueNumber,
    id: optional(obj.id, path, 'id', isString, 'a string') ?? file.id,
    filename: optional(obj.filename, path, 'filename', isString, 'a string') ?? file.name,
    // The original treats a timeout of 0 as unset; so do we.
    lease: optional(obj.timeout, path, 'timeout', isCount, 'a non-negative integer or null') || null,
    requeue,
    requeueCounter: optional(obj.requeue_counter, path, 'requeue_counter', isCount, 'a non-negative integer') ?? 0,
    requeueLimit: optional(obj.requeue_limit, path, 'requeue_limit', isCount, 'a non-negative integer or null') ?? null,
    extra: extra ?? {},
  });
}

/** How deep a message's JSON may nest. */
export const MAX_NESTING = 1000;

/** The deepest nesting of [ and { in a JSON text, strings skipped. */
function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) max = depth;
    } else if (c === 93 || c === 125) depth--;
  }
  return max;
}

export function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isString(v: unknown): v is string {
  return typeof v === 'string';
}

function isRequeue(v: unknown): v is Requeue {
  return typeof v === 'boolean' || isCount(v);
}

function optional<T>(value: unknown, path: string, name: string, check: (v: unknown) => v is T, expected: string): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (check(value)) return value;
  throw corrupt(path, `its "${name}" is ${JSON.stringify(value)}, expected ${expected}`);
}

function queueNumberOf(value: unknown, path: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  // Early versions of the original wrote it as a number.
  if (isCount(value)) return String(value);
  if (typeof value === 'string' && /^\d+$/.test(value)) return value;
  throw corrupt(path, `its "queue_number" is ${JSON.stringify(value)}, expected a string of digits`);
}

function safePriority(file: ReadyName, path: string): number {
  const p = Number(file.priority);
  if (!Number.isSafeInteger(p)) throw corrupt(path, `its priority ${file.priority} is too large`);
  return p;
}

function corrupt(path: string, why: string): DdmqError {
  return new DdmqError('CORRUPT_MESSAGE', `corrupt message file ${path}: ${why}`, { path });
}
