/**
 * Worker presence: each running worker keeps one small file saying who it is, what it
 * serves and what it runs now, rewritten every PRESENCE_BEAT_MS. Task records only tell
 * of tasks that ended; a farm of hour-long tasks would look idle from them. Pure code:
 * the file's shape and name. Where they are written: src/store/presence.ts.
 */
import { safeHost } from './records.js';

/** A worker rewrites its file this often (ms). */
export const PRESENCE_BEAT_MS = 15_000;
/**
 * A worker whose file was last rewritten longer ago than this is taken as gone (killed,
 * or its host down): four missed beats, which also covers clocks apart by up to
 * expiry_grace's default (30 s) between the worker's host and the reader's.
 */
export const PRESENCE_ACTIVE_MS = 60_000;
/** At most this many running tasks are listed in a presence file (`running_count` has them all). */
export const PRESENCE_MAX_RUNNING = 100;

/** A worker's presence file (ROOT/.ddmq/workers/HOST-PID-STARTMS.json), as written. */
export interface WorkerPresence {
  /** The host it runs on. */
  host: string;
  /** Its process id on that host. */
  pid: number;
  /** The queue it serves. */
  queue: string;
  /** Epoch ms the worker started. */
  started: number;
  /** Epoch ms of the last rewrite, by the worker's clock. */
  heartbeat: number;
  /** How many tasks it runs at most at once. */
  concurrency: number;
  /** How many tasks run now. */
  running_count: number;
  /** The tasks running now (the first PRESENCE_MAX_RUNNING): message id and epoch ms it started. */
  running: {
    /** The message's id. */
    id: string;
    /** Epoch ms its task started. */
    since: number;
  }[];
  /** Tasks it finished and acked. */
  done: number;
  /** Tasks that failed (nacked). */
  failed: number;
  /** Tasks it gave back untried. */
  released: number;
  /** Tasks whose lease it lost. */
  lease_lost: number;
}

/** A running worker as `Broker.workers()` gives it: its presence file, and how fresh it is. */
export interface WorkerInfo extends WorkerPresence {
  /** Milliseconds since its file was last rewritten, by the reading host's clock. */
  age_ms: number;
  /** Whether that is recent enough to take it as alive (within a minute: PRESENCE_ACTIVE_MS). */
  active: boolean;
}

/** The worker's file: HOST-PID-STARTMS.json. */
export function presenceFileName(host: string, pid: number, startMs: number): string {
  return `${safeHost(host)}-${pid}-${startMs}.json`;
}

export function isPresenceFileName(name: string): boolean {
  return /^[A-Za-z0-9._]{1,100}-\d{1,10}-\d{1,16}\.json$/.test(name);
}

/** A presence file's content; null for anything that is not one (a half-made file is never seen: they are written whole). */
export function parsePresence(text: string): WorkerPresence | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const p = v as Record<string, unknown>;
  const count = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  const time = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  if (
    typeof p.host !== 'string' ||
    typeof p.queue !== 'string' ||
    !count(p.pid) ||
    !time(p.started) ||
    !time(p.heartbeat) ||
    !count(p.concurrency) ||
    !count(p.running_count) ||
    !count(p.done) ||
    !count(p.failed) ||
    !count(p.released) ||
    !count(p.lease_lost) ||
    !Array.isArray(p.running) ||
    !p.running.every((t: unknown) => typeof t === 'object' && t !== null && typeof (t as { id?: unknown }).id === 'string' && time((t as { since?: unknown }).since))
  ) {
    return null;
  }
  return p as unknown as WorkerPresence;
}
