/**
 * `ddmq top`: gathers a frame (counts from the tree, records appended since the last
 * frame, workers' presence files) every interval and draws it. On a terminal it takes
 * the alternate screen and redraws in place; elsewhere it prints frame after frame.
 * Loaded only by the top command.
 */
import type { DdmqError } from '../format/errors.js';
import type { CurrentCounts } from '../format/stats.js';
import { sparkline, type TopFrame, TopHistory, type TopQueue } from '../format/top.js';
import type { Broker } from '../store/broker.js';
import { brokerInternals } from '../store/internals.js';
import { openBroker } from './open.js';
import { printable, table } from './output.js';
import { EXIT, exitCodeOver, type Input, type RunContext } from './spec.js';

export interface TopOptions {
  queues: string[];
  interval: number;
  minutes: number;
  once: boolean;
  format: 'plain' | 'json';
}

/** Everything a frame needs, read from the root. */
class FrameSource {
  private readonly tail;
  private readonly history;
  private readonly said = new Set<string>();

  constructor(
    private readonly broker: Broker,
    private readonly options: TopOptions,
    private readonly ctx: RunContext,
  ) {
    this.tail = broker.followRecords();
    this.history = new TopHistory(options.minutes);
  }

  /** The next frame, and the queues that could not be counted (each said on stderr once). */
  async next(): Promise<{ frame: TopFrame; problems: DdmqError[]; total: number }> {
    const wanted = this.options.queues;
    const current = new Map<string, CurrentCounts>();
    const problems: DdmqError[] = [];
    const names: string[] = [];
    for (const c of await this.broker.counts(wanted.length === 0 ? undefined : wanted)) {
      names.push(c.queue);
      if (c.error === undefined) current.set(c.queue, { ready: c.ready, delayed: c.delayed, in_flight: c.inFlight, expired: c.expired, corrupt: c.corrupt });
      else problems.push(c.error);
    }
    for (const p of problems) {
      if (this.said.has(p.message)) continue;
      this.said.add(p.message);
      this.ctx.err(`ddmq: error: ${p.message}`);
    }
    this.history.add(this.tail.poll(names));
    const workers = await this.broker.workers();
    return { frame: this.history.frame(brokerInternals(this.broker).clock.now(), names, current, workers), problems, total: names.length };
  }
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;
const EXIT_BY_SIGNAL = { SIGTERM: EXIT.SIGTERM, SIGHUP: EXIT.SIGHUP, SIGQUIT: EXIT.SIGQUIT } as const;

export async function runTop(input: Input, ctx: RunContext, options: TopOptions): Promise<number> {
  const broker = await openBroker(input, ctx);
  const source = new FrameSource(broker, options, ctx);
  const root = String(input.root);
  if (options.once) {
    const { frame, problems, total } = await source.next();
    if (options.format === 'json') ctx.out(JSON.stringify(frame));
    else ctx.out(renderFrame(frame, root).join('\n'));
    return exitCodeOver(problems, total);
  }
  const screen = options.format === 'plain' && process.stdout.isTTY === true ? new Screen() : null;
  let stop: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => (stop = resolve));
  // Every signal that would end the process ends the loop instead, so the terminal is given back.
  const onSignal = (signal: NodeJS.Signals) => stop(signal === 'SIGINT' ? EXIT.OK : EXIT_BY_SIGNAL[signal as keyof typeof EXIT_BY_SIGNAL]);
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  screen?.open(() => stop(EXIT.OK));
  let first = true;
  try {
    for (;;) {
      const { frame } = await source.next();
      if (screen !== null) screen.draw(renderFrame(frame, root, `every ${options.interval} s; q quits`));
      else if (options.format === 'json') ctx.out(JSON.stringify(frame));
      else ctx.out((first ? '' : '\n') + renderFrame(frame, root).join('\n'));
      first = false;
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([stopped, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), options.interval * 1000)))]);
      clearTimeout(timer);
      if (code !== null) return code;
    }
  } finally {
    screen?.close();
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
    broker.close();
  }
}

/**
 * The terminal: the alternate screen, the cursor hidden, keys read one at a time. Raw
 * mode turns the terminal's own keys into bytes, so they are handled here: Ctrl-C and
 * Ctrl-\\ quit, and Ctrl-Z gives the terminal back and stops the process as the shell
 * expects, taking the terminal again once continued.
 */
class Screen {
  private onData: ((data: Buffer) => void) | undefined;
  private taken = false;
  private lines: string[] = [];

  open(quit: () => void): void {
    this.onData = (data) => {
      // q, Q, Ctrl-C, Ctrl-\, Esc alone (not the start of an arrow key's sequence)
      if (data.includes(0x71) || data.includes(0x51) || data.includes(0x03) || data.includes(0x1c) || (data.length === 1 && data[0] === 0x1b)) quit();
      else if (data.includes(0x1a)) this.suspend();
    };
    this.take();
  }

  draw(lines: string[]): void {
    this.lines = lines;
    const width = process.stdout.columns || 80;
    const height = process.stdout.rows || 24;
    const shown = lines.slice(0, height).map((l) => cut(l, width) + '\x1b[K');
    process.stdout.write('\x1b[H' + shown.join('\r\n') + '\x1b[J'); // \r: raw mode may turn off the newline's carriage return
  }

  close(): void {
    this.giveBack();
  }

  private take(): void {
    if (this.taken) return;
    this.taken = true;
    process.stdout.write('\x1b[?1049h\x1b[?25l');
    if (process.stdin.isTTY && this.onData !== undefined) {
      process.stdin.setRawMode(true);
      process.stdin.on('data', this.onData);
      process.stdin.resume();
    }
  }

  private giveBack(): void {
    if (!this.taken) return;
    this.taken = false;
    if (process.stdin.isTTY && this.onData !== undefined) {
      process.stdin.off('data', this.onData);
      process.stdin.setRawMode(false);
      process.stdin.pause();
    }
    process.stdout.write('\x1b[?25h\x1b[?1049l');
  }

  /**
   * SIGTSTP has no handler here, so the process stops before kill() returns, and goes on
   * when the shell continues it. (The kernel ignores it if no shell could: then the
   * screen is simply taken again at once.)
   */
  private suspend(): void {
    this.giveBack();
    process.kill(process.pid, 'SIGTSTP');
    this.take();
    this.draw(this.lines);
  }
}

/** A line cut to the terminal's width (in code points: the charts are one column each). */
function cut(line: string, width: number): string {
  const chars = [...line];
  return chars.length <= width ? line : chars.slice(0, width - 1).join('') + '…';
}

const n = (v: number | null) => (v === null ? '-' : v);

/** Seconds as 45s, 12m05s, 3h20m, 2d04h. */
export function duration(seconds: number | null): string {
  if (seconds === null) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

/** The frame for people: a header, the queues, the charts, the workers, the latest failures. */
export function renderFrame(frame: TopFrame, root: string, note?: string): string[] {
  const rows = [...frame.queues, ...(frame.total === null ? [] : [frame.total])];
  const label = (q: TopQueue) => (q.queue === '*' ? 'all' : q.queue);
  const out: string[] = [];
  out.push(`ddmq top ${root}  ${new Date(frame.now).toISOString().replace('T', ' ').slice(0, 19)} UTC${note ? `  (${note})` : ''}`);
  out.push('');
  if (frame.queues.length === 0) {
    out.push('no queues');
  } else {
    out.push(
      ...table(
        ['queue', 'ready', 'delayed', 'in flight', 'dead', 'done/min', 'failed/min', 'ETA'],
        rows.map((q) => [label(q), n(q.ready), n(q.delayed), n(q.in_flight), q.dead, q.done_per_minute, q.failed_per_minute, q.in_flight === null ? '-' : duration(q.eta_seconds)]),
      ).split('\n'),
    );
    out.push('');
    const first = frame.queues[0]!.chart[0]?.minute;
    out.push(`per minute over the last ${frame.minutes} min${first ? `, from ${first.slice(11, 16)} UTC` : ''} (last column: this minute)`);
    const width = Math.max(6, ...rows.map((q) => label(q).length));
    for (const q of rows) {
      const done = q.chart.map((b) => b.done);
      const failed = q.chart.map((b) => b.failed);
      const max = Math.max(0, ...done, ...failed);
      out.push(`${label(q).padEnd(width)}  done   |${sparkline(done, max)}| max ${max}/min`);
      if (failed.some((v) => v > 0)) out.push(`${''.padEnd(width)}  failed |${sparkline(failed, max)}|`);
    }
  }
  out.push('');
  if (frame.hosts.length === 0) out.push('workers: none at work');
  else out.push(...table(['host', 'workers', 'running', 'slots'], frame.hosts.map((h) => [h.host, h.workers, h.running, h.slots])).split('\n'));
  if (frame.workers_silent > 0) out.push(`(${frame.workers_silent} worker${frame.workers_silent === 1 ? '' : 's'} not heard from for over a minute: killed, or the host is down)`);
  out.push('');
  if (frame.failures.length === 0) {
    out.push('latest failures: none');
  } else {
    out.push('latest failures:');
    for (const f of frame.failures) {
      const how = f.signal !== null ? `signal ${f.signal}` : f.exit_code !== null ? `exit ${f.exit_code}` : f.outcome;
      const what = f.outcome === 'failed' ? (f.action ?? 'failed') : f.outcome;
      const error = (f.error ?? '').split('\n')[0]!;
      out.push(`  ${clock(f.end)} ${f.queue} ${f.id} attempt ${f.attempt ?? '?'} ${how} on ${f.host}, ${what}${error ? `: ${error}` : ''}`);
    }
  }
  return out.map(printable);
}
