/**
 * Task records: one JSON line per finished task, so that what a farm did survives the
 * acks (an acked message leaves no file). Pure code: the record's shape, its line, the
 * names of the files that hold them. Where they are written: src/store/records.ts.
 */

/**
 * How a task ended:
 * - done: acked;
 * - failed: nacked (`action` says whether it was requeued, dead-lettered or dropped);
 * - released: given back untried (a worker stopping);
 * - lease-lost: its worker lost the lease (another client took the message back);
 * - expired: a cleaner took back a lease that ran out (its consumer died or overran).
 */
export type Outcome = 'done' | 'failed' | 'released' | 'lease-lost' | 'expired';
export const OUTCOMES: readonly Outcome[] = ['done', 'failed', 'released', 'lease-lost', 'expired'];

/** What became of the message: acked (deleted), requeued, dead-lettered, dropped; null: nothing (lease lost). */
export type RecordAction = 'acked' | 'requeued' | 'dead-lettered' | 'dropped' | null;

/** One line of a record file; snake_case keys, as in the message files. Times are epoch milliseconds. */
export interface TaskRecord {
  /** The queue the message was consumed from. */
  queue: string;
  /** The message's id. */
  id: string;
  /** The host of the process that settled it. */
  host: string;
  /** That process's id. */
  pid: number;
  /** When it was consumed; null when the process that settled it did not consume it (a one-shot `ddmq ack`). */
  start: number | null;
  /** When it was settled (acked, nacked, ...). */
  end: number;
  /** end - start; null when start is not known. */
  runtime_ms: number | null;
  /** How the task ended. */
  outcome: Outcome;
  /** What became of the message. */
  action: RecordAction;
  /** The task's exit code and signal, when the caller knew them (`ddmq work` does). */
  exit_code: number | null;
  /** The signal that ended the task (`SIGTERM`), when the caller knew it. */
  signal: string | null;
  /** Which run this was: the requeue counter + 1; null when not known. */
  attempt: number | null;
  /** Why it failed (nack's error, or the message's last_error), at most 4,000 characters. */
  error: string | null;
}

/**
 * A record as one JSON line, the same text as JSON.stringify(record) + '\\n' (keys in the
 * interface's order), written out by hand: it is on the per-message path, and plain
 * identifiers and numbers (nearly every field) need no escaping, which JSON.stringify of a
 * whole object takes twice as long to find out.
 */
export function encodeRecordLine(r: TaskRecord): string {
  return (
    `{"queue":${jsonString(r.queue)},"id":${jsonString(r.id)},"host":${jsonString(r.host)},"pid":${jsonNumber(r.pid)},` +
    `"start":${jsonNumber(r.start)},"end":${jsonNumber(r.end)},"runtime_ms":${jsonNumber(r.runtime_ms)},` +
    `"outcome":${jsonString(r.outcome)},"action":${jsonString(r.action)},"exit_code":${jsonNumber(r.exit_code)},` +
    `"signal":${jsonString(r.signal)},"attempt":${jsonNumber(r.attempt)},"error":${jsonString(r.error)}}\n`
  );
}

/** Characters JSON never escapes. */
const PLAIN = /^[\w.:@+-]*$/;
const jsonString = (s: string | null) => (s === null ? 'null' : PLAIN.test(s) ? `"${s}"` : JSON.stringify(s));
const jsonNumber = (n: number | null) => (n === null || !Number.isFinite(n) ? 'null' : String(n));

/** What the caller of ack, nack and release may add to the record. */
export interface RecordDetails {
  /**
   * The task's exit code.
   * @default null
   */
  exitCode?: number | null;
  /**
   * The signal that ended the task (`SIGTERM`).
   * @default null
   */
  signal?: string | null;
  /** Why it failed, for a record of a failure. */
  error?: string | null;
}

export const MAX_ERROR_CHARS = 4000;

/** The largest epoch ms a Date holds. */
const MAX_TIME_MS = 8.64e15;

/** The file a writer appends to: HOST-PID-STARTMS.jsonl (the host's name made safe for a file name). */
export function recordFileName(host: string, pid: number, startMs: number): string {
  return `${safeHost(host)}-${pid}-${startMs}.jsonl`;
}

/** A host name as it appears in a record file's name: letters, digits, '.' and '_' only. */
export function safeHost(host: string): string {
  return (host.replace(/[^A-Za-z0-9._]/g, '_') || 'host').slice(0, 100);
}

/** The writer of a record file, from its name; null for a name that is not a record file's. */
export function parseRecordFileName(name: string): { host: string; pid: number; startMs: number } | null {
  const m = /^([A-Za-z0-9._]{1,100})-(\d{1,10})-(\d{1,16})\.jsonl$/.exec(name);
  if (m === null) return null;
  return { host: m[1]!, pid: Number(m[2]), startMs: Number(m[3]) };
}

/**
 * Parses one line of a record file; null for anything that is not a whole record (the
 * half-written last line of a writer that was killed, a line cut by a full disk).
 */
export function parseRecordLine(line: string): TaskRecord | null {
  if (line.length === 0 || line.charCodeAt(line.length - 1) !== 0x7d /* } */) return null;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const r = v as Record<string, unknown>;
  const numOrNull = (x: unknown) => x === null || (typeof x === 'number' && Number.isFinite(x));
  // Times must be dates (a JavaScript Date spans ±8.64e15 ms): 1e300 would break every date shown.
  const time = (x: unknown) => typeof x === 'number' && Math.abs(x) <= MAX_TIME_MS;
  const strOrNull = (x: unknown) => x === null || typeof x === 'string';
  if (
    typeof r.queue !== 'string' ||
    typeof r.id !== 'string' ||
    typeof r.host !== 'string' ||
    !(typeof r.pid === 'number' && Number.isSafeInteger(r.pid)) ||
    !time(r.end) ||
    !(OUTCOMES as readonly unknown[]).includes(r.outcome) ||
    !(r.start === null || time(r.start)) ||
    !numOrNull(r.runtime_ms) ||
    !numOrNull(r.exit_code) ||
    !numOrNull(r.attempt) ||
    !strOrNull(r.signal) ||
    !strOrNull(r.error) ||
    !(r.action === null || r.action === 'acked' || r.action === 'requeued' || r.action === 'dead-lettered' || r.action === 'dropped')
  ) {
    return null;
  }
  return r as unknown as TaskRecord;
}

/** The records of a file's text, skipping lines that are not whole records. */
export function parseRecords(text: string): TaskRecord[] {
  const out: TaskRecord[] = [];
  for (const line of text.split('\n')) {
    const r = parseRecordLine(line);
    if (r !== null) out.push(r);
  }
  return out;
}
