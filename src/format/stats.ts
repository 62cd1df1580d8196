/**
 * What a farm did, from its task records and the queues' current counts. Pure code: the
 * store reads the records and counts (Broker.stats), this sums them up, and the command
 * line prints the result (plain, JSON, YAML or Prometheus text).
 */
import type { TaskRecord } from './records.js';

/** How many tasks ended each way. */
export interface OutcomeCounts {
  /** Done: acked. */
  done: number;
  /** Nacked: retried, dead-lettered or dropped. */
  failed: number;
  /** Failed and requeued (to be tried again). */
  retried: number;
  /** Given back untried (a worker stopping). */
  released: number;
  /** Moved to the dead-letter queue: a failure or an expired lease past the limit. */
  dead_lettered: number;
  /** Dropped: a failure or an expired lease, past the limit or with requeue off. */
  dropped: number;
  /** Their worker lost the lease (another client took the message back). */
  lease_lost: number;
  /** Leases taken back by a cleaner (their consumer died or overran). */
  expired: number;
}

/** A queue's messages now, by state (see `QueueCounts`). */
export interface CurrentCounts {
  /** Ready to be consumed. */
  ready: number;
  /** Waiting out a delay or a retry backoff. */
  delayed: number;
  /** Consumed, not settled yet (the expired ones included). */
  in_flight: number;
  /** In flight with a lease that ran out. */
  expired: number;
  /** Files moved aside to corrupt/. */
  corrupt: number;
}

/** Runtimes of tasks, in milliseconds; null when there are none. */
export interface RuntimeSummary {
  /** Tasks done in the window whose runtime is known. */
  count: number;
  /** The median. */
  p50: number | null;
  /** The 90th percentile. */
  p90: number | null;
  /** The 99th percentile. */
  p99: number | null;
  /** The longest. */
  max: number | null;
}

/** What one queue (or all of them together) did: counts, rates, runtimes, workers, errors. */
export interface QueueStats {
  /** The queue, or "*" for all of them together. */
  queue: string;
  /** From the tree now; null when the queue could not be counted (it was deleted: only its records are left). */
  current: CurrentCounts | null;
  /** Every record kept (history_max_age, history_max_bytes bound them). */
  all_time: OutcomeCounts;
  /** The records of the window (since .. now). */
  since: OutcomeCounts;
  /** Tasks per minute in the window: done and failed, by the minute they ended (ISO time of its start). */
  throughput: {
    /** The minute's start, as ISO time. */
    minute: string;
    /** Tasks done in that minute. */
    done: number;
    /** Tasks failed in that minute. */
    failed: number;
  }[];
  /** Runtime of the done tasks of the window, in ms (nearest-rank percentiles). */
  runtime_ms: RuntimeSummary;
  /** Done per minute, over the last 10 minutes (or since the first record in them). */
  rate_per_minute: number;
  /** Failed per minute, over the same span. */
  failed_per_minute: number;
  /** Seconds until ready + delayed + in flight are done at that rate; null: no rate yet, or no counts. */
  eta_seconds: number | null;
  /** Workers seen in the window: distinct host and pid that settled a task, by host. */
  workers: Record<string, number>;
  /** The most common errors of the window's failures, most common first (at most 5). */
  top_errors: {
    /** The error text. */
    error: string;
    /** How many failures gave it. */
    count: number;
  }[];
}

/** What a farm did: per queue, and in total (see `Broker.stats`). */
export interface Stats {
  /** Epoch ms the figures are for. */
  now: number;
  /** Start of the window, epoch ms. */
  since: number;
  /** One entry per queue, by name. */
  queues: QueueStats[];
  /** Every queue together (`queue` is "*"). */
  total: QueueStats;
}

/** The window when none is given: the last hour. */
export const DEFAULT_WINDOW_MS = 3600_000;
/** The span the rate (and so the ETA) is taken over. */
export const RATE_WINDOW_MS = 600_000;
/** At most this many throughput buckets (a day of minutes); a longer window shows its last day. */
const MAX_BUCKETS = 1440;

export function emptyCounts(): OutcomeCounts {
  return { done: 0, failed: 0, retried: 0, released: 0, dead_lettered: 0, dropped: 0, lease_lost: 0, expired: 0 };
}

export function countRecord(c: OutcomeCounts, r: TaskRecord): void {
  switch (r.outcome) {
    case 'done':
      c.done++;
      break;
    case 'failed':
      c.failed++;
      if (r.action === 'requeued') c.retried++;
      break;
    case 'released':
      c.released++;
      break;
    case 'lease-lost':
      c.lease_lost++;
      break;
    case 'expired':
      c.expired++;
      break;
  }
  if (r.action === 'dead-lettered') c.dead_lettered++;
  else if (r.action === 'dropped') c.dropped++;
}

/** The nearest-rank percentile of sorted values. */
function percentile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/**
 * Sums up the records of some queues. `current` holds each queue's counts from the tree
 * (a queue missing from it has records only). `since` defaults to an hour before `now`.
 */
export function summarize(
  records: Iterable<TaskRecord>,
  current: Map<string, CurrentCounts>,
  options: { now: number; since?: number },
): Stats {
  const now = options.now;
  const since = options.since ?? now - DEFAULT_WINDOW_MS;
  const byQueue = new Map<string, TaskRecord[]>();
  for (const name of current.keys()) byQueue.set(name, []);
  const all: TaskRecord[] = [];
  for (const r of records) {
    let list = byQueue.get(r.queue);
    if (list === undefined) byQueue.set(r.queue, (list = []));
    list.push(r);
    all.push(r);
  }
  const queues = [...byQueue.keys()].sort().map((q) => one(q, byQueue.get(q)!, current.has(q) ? current.get(q)! : null, now, since));
  let total: CurrentCounts | null = null;
  for (const c of current.values()) {
    total ??= { ready: 0, delayed: 0, in_flight: 0, expired: 0, corrupt: 0 };
    for (const k of Object.keys(total) as (keyof CurrentCounts)[]) total[k] += c[k];
  }
  return { now, since, queues, total: one('*', all, total, now, since) };
}

function one(queue: string, records: TaskRecord[], current: CurrentCounts | null, now: number, since: number): QueueStats {
  const allTime = emptyCounts();
  const window = emptyCounts();
  const runtimes: number[] = [];
  const firstBucket = Math.max(Math.floor(since / 60_000), Math.floor(now / 60_000) - MAX_BUCKETS + 1);
  const lastBucket = Math.floor(now / 60_000);
  const buckets = new Map<number, { done: number; failed: number }>();
  const workers = new Map<string, Set<number>>();
  const errors = new Map<string, number>();
  const rateFrom = now - RATE_WINDOW_MS;
  let recentDone = 0;
  let recentFailed = 0;
  let recentFirst = Infinity;
  for (const r of records) {
    countRecord(allTime, r);
    if (r.end > rateFrom && r.end <= now) {
      recentFirst = Math.min(recentFirst, r.start !== null && r.start > rateFrom ? r.start : r.end);
      if (r.outcome === 'done') recentDone++;
      else if (r.outcome === 'failed') recentFailed++;
    }
    if (r.end < since || r.end > now) continue;
    countRecord(window, r);
    if (r.outcome === 'done' && r.runtime_ms !== null) runtimes.push(r.runtime_ms);
    const minute = Math.floor(r.end / 60_000);
    if ((r.outcome === 'done' || r.outcome === 'failed') && minute >= firstBucket) {
      const b = buckets.get(minute) ?? { done: 0, failed: 0 };
      b[r.outcome]++;
      buckets.set(minute, b);
    }
    // A cleaner's record says nothing of who worked: it only found the lease run out.
    if (r.outcome !== 'expired') {
      let pids = workers.get(r.host);
      if (pids === undefined) workers.set(r.host, (pids = new Set()));
      pids.add(r.pid);
    }
    if (r.error !== null && (r.outcome === 'failed' || r.outcome === 'lease-lost')) errors.set(r.error, (errors.get(r.error) ?? 0) + 1);
  }
  runtimes.sort((a, b) => a - b);
  const throughput: QueueStats['throughput'] = [];
  for (let m = firstBucket; m <= lastBucket; m++) {
    const b = buckets.get(m) ?? { done: 0, failed: 0 };
    throughput.push({ minute: new Date(m * 60_000).toISOString(), done: b.done, failed: b.failed });
  }
  // Over a run shorter than the rate window, the rate is over the run (at least one second).
  const spanMs = recentDone + recentFailed === 0 ? RATE_WINDOW_MS : Math.max(1000, now - Math.max(rateFrom, recentFirst));
  const rate = (recentDone * 60_000) / spanMs;
  const remaining = current === null ? null : current.ready + current.delayed + current.in_flight;
  const eta = remaining === null ? null : remaining === 0 ? 0 : rate > 0 ? Math.max(1, Math.round((remaining / rate) * 60)) : null;
  return {
    queue,
    current,
    all_time: allTime,
    since: window,
    throughput,
    runtime_ms: {
      count: runtimes.length,
      p50: percentile(runtimes, 0.5),
      p90: percentile(runtimes, 0.9),
      p99: percentile(runtimes, 0.99),
      max: runtimes.length === 0 ? null : runtimes[runtimes.length - 1]!,
    },
    rate_per_minute: Math.round(rate * 100) / 100,
    failed_per_minute: Math.round(((recentFailed * 60_000) / spanMs) * 100) / 100,
    eta_seconds: eta,
    workers: Object.fromEntries([...workers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([h, p]) => [h, p.size])),
    top_errors: [...errors.entries()]
      .sort(([ea, a], [eb, b]) => b - a || (ea < eb ? -1 : ea > eb ? 1 : 0))
      .slice(0, 5)
      .map(([error, count]) => ({ error, count })),
  };
}

/** A label value in the Prometheus text format: backslash, double quote and newline escaped. */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * The Prometheus text exposition format (version 0.0.4), for node_exporter's textfile
 * collector. Every metric is a gauge: the records are pruned (history_max_age,
 * history_max_bytes), so their counts can go down, which a counter must not.
 */
export function prometheusText(stats: Stats): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, samples: [Record<string, string>, number | null][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) {
      if (value === null) continue;
      const l = Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`).join(',');
      lines.push(`${name}{${l}} ${value}`);
    }
  };
  const qs = stats.queues;
  const states: (keyof CurrentCounts)[] = ['ready', 'delayed', 'in_flight', 'expired', 'corrupt'];
  metric('ddmq_messages', 'Messages in the queue now, by state.', qs.flatMap((q) => states.map((s) => [{ queue: q.queue, state: s }, q.current?.[s] ?? null] as [Record<string, string>, number | null])));
  const outcomes = Object.keys(emptyCounts()) as (keyof OutcomeCounts)[];
  metric('ddmq_tasks', 'Tasks in the kept records, by outcome.', qs.flatMap((q) => outcomes.map((o) => [{ queue: q.queue, outcome: o }, q.all_time[o]] as [Record<string, string>, number])));
  metric('ddmq_tasks_window', 'Tasks that ended in the window (since ddmq_window_start_seconds), by outcome.', qs.flatMap((q) => outcomes.map((o) => [{ queue: q.queue, outcome: o }, q.since[o]] as [Record<string, string>, number])));
  metric('ddmq_task_runtime_seconds', 'Runtime of the tasks done in the window, by quantile.', qs.flatMap((q) =>
    (['p50', 'p90', 'p99', 'max'] as const).map((k) => [{ queue: q.queue, quantile: { p50: '0.5', p90: '0.9', p99: '0.99', max: '1' }[k] }, q.runtime_ms[k] === null ? null : q.runtime_ms[k]! / 1000] as [Record<string, string>, number | null]),
  ));
  metric('ddmq_done_per_minute', 'Tasks done per minute over the last 10 minutes.', qs.map((q) => [{ queue: q.queue }, q.rate_per_minute]));
  metric('ddmq_failed_per_minute', 'Tasks failed per minute over the last 10 minutes.', qs.map((q) => [{ queue: q.queue }, q.failed_per_minute]));
  metric('ddmq_eta_seconds', 'Seconds until what is ready, delayed and in flight is done, at that rate.', qs.map((q) => [{ queue: q.queue }, q.eta_seconds]));
  metric('ddmq_workers', 'Worker processes (host and pid) that settled a task in the window, by host.', qs.flatMap((q) => Object.entries(q.workers).map(([host, n]) => [{ queue: q.queue, host }, n] as [Record<string, string>, number])));
  metric('ddmq_window_start_seconds', 'Start of the window, epoch seconds.', [[{}, Math.floor(stats.since / 1000)]]);
  // An empty label set prints as name{} 123, which the format allows; plainer without the braces.
  return lines.map((l) => l.replace(/\{\} /, ' ')).join('\n') + '\n';
}
