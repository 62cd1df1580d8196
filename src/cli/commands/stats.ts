import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { DdmqError } from '../../format/errors.js';
import { brokerInternals } from '../../store/internals.js';
import { openBroker } from '../open.js';
import { emit, printable } from '../output.js';
import { type CommandSpec, DEBUG, exitCodeOver, FORMAT, ROOT_ARG, VERBOSE } from '../spec.js';
import { optionalQueues, reportFailure } from './each-queue.js';

export const statsCommand: CommandSpec = {
  name: 'stats',
  summary: 'Show what the farm did: tasks by outcome, throughput, runtimes, ETA, workers, errors',
  help:
    'From the task records (ROOT/.ddmq/records, kept while the history setting is on) and the current counts.\n' +
    'Per queue and in total: outcomes over every kept record and since --since (default: the last hour), tasks\n' +
    'per minute, runtime percentiles of the done tasks, the done rate over the last 10 minutes and the ETA of\n' +
    'what is ready, delayed and in flight, workers (host and pid) per host, the most common errors.\n' +
    '--since takes a duration (90s, 15m, 2h, 7d) or an ISO time. --prometheus FILE writes the figures in the\n' +
    'Prometheus text format (for node_exporter\'s textfile collector), atomically; "-" prints them instead.',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated queues (default: all, also deleted ones with records left)', required: false, list: true }],
  options: [
    { key: 'since', flags: '--since <when>', description: 'start of the window: a duration back from now (30m, 2h, 7d) or an ISO time', type: 'string' },
    { key: 'prometheus', flags: '--prometheus <file>', description: 'write the Prometheus text format to FILE (atomically), or to stdout with "-"', type: 'string' },
    FORMAT(['plain', 'json', 'yaml'], 'plain'),
    VERBOSE,
    DEBUG,
  ],
  async run(input, ctx) {
    const wanted = optionalQueues(input);
    const broker = await openBroker(input, ctx);
    const since = input.since === undefined ? undefined : parseSince(String(input.since), brokerInternals(broker).clock.now());
    const stats = await broker.stats(wanted.length === 0 ? undefined : wanted, { since });
    // A queue that cannot be counted is said, as view does; its records are still shown.
    for (const p of stats.problems) reportFailure(ctx, p);
    const code = exitCodeOver(stats.problems, Math.max(stats.queues.length, stats.problems.length));
    const prometheus = input.prometheus as string | undefined;
    if (prometheus !== undefined) {
      const { prometheusText } = await import('../../format/stats.js');
      const text = prometheusText(stats);
      if (prometheus === '-') {
        ctx.out(text.trimEnd());
        return code;
      }
      writeAtomically(prometheus, text);
      if (input.v) ctx.err(`ddmq: info: wrote ${prometheus}`);
      return code;
    }
    const rows = [...stats.queues, ...(stats.queues.length > 1 ? [stats.total] : [])].map((q) => ({ ...q, since_ms: stats.since, now_ms: stats.now }));
    await emit(ctx, String(input.format), rows, (r) => plainStats(r as unknown as (typeof stats.queues)[number], stats.since));
    return code;
  },
};

/** "90s", "15m", "2h", "7d" back from now, or an ISO time; epoch ms. */
export function parseSince(text: string, now: number): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(text.trim());
  // Only what looks like a date: Date.parse takes odd things ("1") as years.
  const t = m
    ? now - Number(m[1]) * { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
    : /^\d{4}-\d{2}-\d{2}/.test(text.trim())
      ? Date.parse(text)
      : NaN;
  // A time no date can hold (999999999d back) is refused as well: it could not be shown.
  if (Number.isNaN(new Date(t).getTime())) throw new DdmqError('INVALID_ARGUMENT', `--since ${JSON.stringify(text)}: expected a duration (30m, 2h, 7d) or an ISO time (2024-05-01T12:00:00Z)`);
  return t;
}

/**
 * Writes the file whole or not at all, as node_exporter's textfile collector asks: a
 * temporary file beside it, then a rename. The file is the user's own, named by them
 * (outside the tree), so its path is followed as given: a link to a file leaves the link
 * and replaces the file it leads to. What is not a regular file (a folder, /dev/full, a
 * FIFO) is refused: a rename would replace it.
 */
function writeAtomically(path: string, text: string): void {
  let target = path;
  try {
    if (!fs.statSync(path).isFile()) {
      throw new DdmqError('INVALID_ARGUMENT', `--prometheus ${path}: not a regular file (a folder, a device or a FIFO); name a file, or "-" for stdout`, { path });
    }
    target = fs.realpathSync(path);
  } catch (err) {
    if (err instanceof DdmqError) throw err;
    // Not there yet (or a link leading nowhere): made by the rename.
  }
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, text, { flag: 'wx', mode: 0o644 });
    fs.renameSync(tmp, target);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never made, or gone: the first error is the one to report
    }
    const code = (err as NodeJS.ErrnoException).code;
    throw new DdmqError('IO', `cannot write ${path}: ${(err as Error).message}`, { path, osCode: code });
  }
}

function fmtMs(ms: number | null): string {
  if (ms === null) return '-';
  return ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

function plainStats(q: import('../../format/stats.js').QueueStats, since: number): string {
  const c = q.current;
  const o = (x: typeof q.all_time) =>
    `done ${x.done}, failed ${x.failed} (retried ${x.retried}), released ${x.released}, dead-lettered ${x.dead_lettered}, dropped ${x.dropped}, lease lost ${x.lease_lost}, expired ${x.expired}`;
  const busy = q.throughput.filter((b) => b.done + b.failed > 0);
  const peak = busy.reduce((m, b) => Math.max(m, b.done), 0);
  const workers = Object.entries(q.workers);
  return [
    `${q.queue === '*' ? 'all queues' : `queue ${q.queue}`}${c === null ? ' (no such queue now: records only)' : ''}`,
    c === null ? null : `  now:       ready ${c.ready}, delayed ${c.delayed}, in flight ${c.in_flight}, expired ${c.expired}, corrupt ${c.corrupt}`,
    `  all kept:  ${o(q.all_time)}`,
    `  since ${new Date(since).toISOString()}: ${o(q.since)}`,
    `  runtime:   p50 ${fmtMs(q.runtime_ms.p50)}, p90 ${fmtMs(q.runtime_ms.p90)}, p99 ${fmtMs(q.runtime_ms.p99)}, max ${fmtMs(q.runtime_ms.max)} (${q.runtime_ms.count} done)`,
    `  rate:      ${q.rate_per_minute}/min done, ${q.failed_per_minute}/min failed (last 10 min), peak ${peak}/min; ETA ${q.eta_seconds === null ? '?' : `${q.eta_seconds} s`}`,
    `  workers:   ${workers.length === 0 ? 'none seen' : workers.map(([h, n]) => `${h} ${n}`).join(', ')}`,
    ...q.top_errors.map((e) => `  error ×${e.count}: ${e.error.split('\n')[0]}`),
  ]
    .filter((l) => l !== null)
    .map(printable)
    .join('\n');
}
