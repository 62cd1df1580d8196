/**
 * The frames of `ddmq top`: what each queue holds now, its done and failed rates with a
 * chart of the last minutes, the ETA, the workers at work by host and the latest
 * failures. Pure code: the store gathers the counts, records and presence files, this
 * turns them into a frame, and the command line draws it (src/cli/top-view.ts).
 */
import type { WorkerPresence } from './presence.js';
import type { TaskRecord } from './records.js';
import { type CurrentCounts, RATE_WINDOW_MS, summarize } from './stats.js';

export interface TopQueue {
  /** The queue, or "*" for all shown together. */
  queue: string;
  /** Now, from the tree; null when it could not be counted (deleted, or a problem said on stderr). */
  ready: number | null;
  delayed: number | null;
  in_flight: number | null;
  /** Leases run out, not yet taken back by a cleaner (counted in in_flight too). */
  expired: number | null;
  /** Files set aside as corrupt, now. */
  corrupt: number | null;
  /** Messages given up on over the kept records: dead-lettered or dropped. */
  dead: number;
  done_per_minute: number;
  failed_per_minute: number;
  /** Seconds until ready + delayed + in flight are done at the done rate; null when unknown. */
  eta_seconds: number | null;
  /** Done and failed per minute, oldest first, the last one the minute under way (ISO time of each minute's start). */
  chart: { minute: string; done: number; failed: number }[];
}

export interface TopHost {
  host: string;
  /** Worker processes heard from within PRESENCE_ACTIVE_MS. */
  workers: number;
  /** Tasks they run now. */
  running: number;
  /** Tasks they could run at once (the sum of their concurrency). */
  slots: number;
}

export interface TopFailure {
  /** Epoch ms it ended. */
  end: number;
  queue: string;
  id: string;
  host: string;
  outcome: TaskRecord['outcome'];
  action: TaskRecord['action'];
  attempt: number | null;
  exit_code: number | null;
  signal: string | null;
  error: string | null;
}

export interface TopFrame {
  /** Epoch ms the frame is for. */
  now: number;
  /** Minutes the charts span. */
  minutes: number;
  queues: TopQueue[];
  /** All the shown queues together; null with one queue. */
  total: TopQueue | null;
  hosts: TopHost[];
  /** Workers whose presence file is older than PRESENCE_ACTIVE_MS (killed, or their host is down). */
  workers_silent: number;
  /** The latest failures, newest first: failed, lease lost, expired. */
  failures: TopFailure[];
}

/** How many failures a frame lists. */
export const TOP_FAILURES = 8;

/**
 * What `top` keeps between frames: the records of the last minutes (for rates, charts
 * and the latest failures) and, per queue, the count of messages given up on over every
 * record read since it started (the records kept when it started, and those since).
 */
export class TopHistory {
  private recent: TaskRecord[] = [];
  private readonly dead = new Map<string, number>();

  constructor(readonly minutes: number) {}

  /** Takes records read since the last frame. */
  add(records: Iterable<TaskRecord>): void {
    for (const r of records) {
      if (r.action === 'dead-lettered' || r.action === 'dropped') this.dead.set(r.queue, (this.dead.get(r.queue) ?? 0) + 1);
      this.recent.push(r);
    }
  }

  /**
   * The frame at `now` for these queues. `current` holds each queue's counts from the
   * tree (a queue missing from it is shown with its records only); `workers` the presence
   * files, with whether each is recent enough to be taken as alive.
   */
  frame(now: number, queues: readonly string[], current: Map<string, CurrentCounts>, workers: readonly (WorkerPresence & { active: boolean })[]): TopFrame {
    const from = now - Math.max(this.minutes * 60_000, RATE_WINDOW_MS);
    this.recent = this.recent.filter((r) => r.end >= from);
    const shown = new Set(queues);
    const mine = this.recent.filter((r) => shown.has(r.queue));
    const counts = new Map([...current].filter(([q]) => shown.has(q)));
    // The minute under way is the last bucket: the window starts minutes - 1 whole minutes before it.
    const since = (Math.floor(now / 60_000) - this.minutes + 1) * 60_000;
    const stats = summarize(mine, counts, { now, since });
    const row = (q: (typeof stats.queues)[number]): TopQueue => {
      const c = q.current;
      const dead = q.queue === '*' ? queues.reduce((n, name) => n + (this.dead.get(name) ?? 0), 0) : (this.dead.get(q.queue) ?? 0);
      return {
        queue: q.queue,
        ready: c?.ready ?? null,
        delayed: c?.delayed ?? null,
        in_flight: c?.in_flight ?? null,
        expired: c?.expired ?? null,
        corrupt: c?.corrupt ?? null,
        dead,
        done_per_minute: q.rate_per_minute,
        failed_per_minute: q.failed_per_minute,
        eta_seconds: q.eta_seconds,
        chart: q.throughput,
      };
    };
    const byName = new Map(stats.queues.map((q) => [q.queue, q]));
    // A queue that could not be counted and has no records in the window: shown with its counts unknown.
    const blank = (name: string) => ({ ...stats.total, queue: name, current: null, rate_per_minute: 0, failed_per_minute: 0, eta_seconds: null, throughput: stats.total.throughput.map((b) => ({ ...b, done: 0, failed: 0 })) });
    const rows = queues.map((name) => row(byName.get(name) ?? blank(name)));
    const hosts = new Map<string, TopHost>();
    let silent = 0;
    for (const w of workers) {
      if (!shown.has(w.queue)) continue;
      if (!w.active) {
        silent++;
        continue;
      }
      const h = hosts.get(w.host) ?? { host: w.host, workers: 0, running: 0, slots: 0 };
      h.workers++;
      h.running += w.running_count;
      h.slots += w.concurrency;
      hosts.set(w.host, h);
    }
    const failures = mine
      .filter((r) => r.outcome === 'failed' || r.outcome === 'lease-lost' || r.outcome === 'expired')
      .sort((a, b) => b.end - a.end)
      .slice(0, TOP_FAILURES)
      .map((r) => ({
        end: r.end,
        queue: r.queue,
        id: r.id,
        host: r.host,
        outcome: r.outcome,
        action: r.action,
        attempt: r.attempt,
        exit_code: r.exit_code,
        signal: r.signal,
        error: r.error,
      }));
    return {
      now,
      minutes: this.minutes,
      queues: rows,
      total: rows.length > 1 ? row(stats.total) : null,
      hosts: [...hosts.values()].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0)),
      workers_silent: silent,
      failures,
    };
  }
}

const BARS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** A one-line chart: a space for 0, else one of eight bars scaled to `max` (at least the lowest bar for any non-zero value). */
export function sparkline(values: readonly number[], max = Math.max(0, ...values)): string {
  return values.map((v) => (v <= 0 || max <= 0 ? ' ' : BARS[Math.min(7, Math.max(0, Math.ceil((v / max) * 8) - 1))]!)).join('');
}
