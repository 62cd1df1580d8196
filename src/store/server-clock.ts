/**
 * The file server's clock, as this client sees it: every time the tree holds or judges (a
 * lease's expiry, a delayed message's due time, records, presence) is taken on it, so that
 * hosts whose own clocks disagree still agree on when a lease runs out.
 *
 * It is measured from the modification time the server stamps on a small file this client
 * has just written: a temporary file (`.tmp-…`, no `.ddmq` in its name, so neither this tool
 * nor the original takes it for a message, and a clean removes it if the client is killed
 * before it unlinks it) in the folder of the queue in use. The mtime was stamped somewhere
 * between the moment the client began writing and the moment the write returned, and it
 * is truncated to the file system's resolution (whole seconds on sshfs and MooseFS; a tick of
 * the kernel's coarse clock, a few ms, elsewhere), so one
 * probe gives an interval for the offset; its middle is used, its half-width is the
 * uncertainty, and later probes narrow it (intervals that agree are intersected).
 *
 * The offset is kept against the monotonic clock, so a step of this host's wall clock (NTP,
 * a suspend) does not move it; such a step (wall − monotonic changing by over a second)
 * is still taken as a reason to measure again, as is age: it is measured at first need and
 * then every REFRESH_MS. A probe that cannot be written (a read-only tree, no permission),
 * or stamps that disagree between two probes beyond their resolution (not a server's
 * clock, or one far coarser than a second), make it fall back to this host's own clock, with
 * one warning; it is then tried again after REFRESH_MS.
 */
import * as fs from 'node:fs';
import { sep } from 'node:path';
import { DdmqError } from '../format/errors.js';
import { newClaimToken } from '../format/names.js';
import { errnoOf, TEMP_PREFIX } from './fsx.js';
import type { Clock, Reporter } from './host.js';

/** Milliseconds between measurements of a clock in use. */
export const REFRESH_MS = 10 * 60_000;
/** A change of (wall − monotonic) beyond this many ms: this host's clock stepped; measure again. */
export const STEP_MS = 1000;
/** Slack allowed between two probes' intervals before they are said to disagree (scheduling, rounding). */
export const AGREE_SLACK_MS = 50;
/**
 * Milliseconds a kernel's stamp may lag its clock: file times come from a coarse clock,
 * updated once a tick (1 to 10 ms), so even a nanosecond stamp can be a few ms old.
 */
export const COARSE_STAMP_MS = 20;
/**
 * How fast two clocks may drift apart between probes: 100 ppm, a poor quartz crystal (NTP
 * keeps them far closer). Faster drift makes a refresh disagree with the last one, and
 * two fresh probes then replace it (as when the server's clock is set).
 */
const DRIFT_PER_MS = 100e-6;
/** The default `expiry_grace`, in seconds, where the server clock is in use (see the README: "Clocks"). */
export const SERVER_CLOCK_GRACE = 5;
/** The default `expiry_grace`, in seconds, where it is not (this host's own clock). */
export const CLIENT_CLOCK_GRACE = 30;

/** One probe: the monotonic ms before the write began and after it returned, and the mtime the file got. */
export interface ProbeResult {
  /** Monotonic ms just before the file was created. */
  before: number;
  /** Monotonic ms just after it was written and closed. */
  after: number;
  /** Its mtime, in ns since the epoch, as stat gives it. */
  mtimeNs: bigint;
}

/** Writes a probe file in a folder and stats it (see probeIn); throws what the file system throws. */
export type Probe = (dir: string) => ProbeResult;

/** Where the clock stands, for `settings`, logs and tests. */
export type ClockState =
  | {
      /** The server's clock is in use. */
      kind: 'server';
      /** Server epoch ms − this host's monotonic ms (the middle of what the probes allow). */
      offsetMs: number;
      /** Half the width of what the probes allow, in ms. */
      uncertaintyMs: number;
      /** The resolution of the server's stamps, in ms: 1000 (whole seconds), 1, or 0 (finer). */
      resolutionMs: number;
      /** How far this host's clock runs ahead of the server's, in ms (negative: behind). */
      skewMs: number;
    }
  | {
      /** This host's clock is in use: the probe failed or its stamps were not usable. */
      kind: 'fallback';
      /** Why. */
      reason: string;
    }
  | {
      /** Not measured yet (no queue used so far): this host's clock meanwhile. */
      kind: 'unmeasured';
    }
  | {
      /** Off (the serverClock option false, or a `now` given): this host's clock, or the one given. */
      kind: 'off';
    };

/** An interval of possible offsets (server epoch ms − monotonic ms), and when it was measured. */
interface Span {
  lo: number;
  hi: number;
  /** The resolution of the stamps, in ms. */
  resolution: number;
  /** Monotonic ms of the probe. */
  at: number;
}

/** What a ServerClock needs; tests pass their own probe and clocks. */
export interface ServerClockOptions {
  /** Epoch ms of this host (Date.now). */
  wall?: () => number;
  /** Monotonic ms (any origin), the clock the probes' before and after are on. */
  mono?: () => number;
  /** Writes and stats a probe file in a folder. */
  probe?: Probe;
  /** Where warnings and log lines go. */
  report: Reporter;
  /** Milliseconds between measurements. */
  refreshMs?: number;
}

/** The monotonic clock, in ms. */
const monoNow = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * Writes a temporary file in `dir`, stats it and removes it. `before` and `after` bound
 * the moment the server stamped its mtime (at create or at the write).
 */
export function probeIn(dir: string, mono: () => number = monoNow): ProbeResult {
  const path = `${dir}${sep}${TEMP_PREFIX}${process.pid}-clock-${newClaimToken()}`;
  const before = mono();
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    try {
      fs.writeSync(fd, 'ddmq clock probe\n');
    } finally {
      fs.closeSync(fd);
    }
    const after = mono();
    const mtimeNs = fs.statSync(path, { bigint: true }).mtimeNs;
    return { before, after, mtimeNs };
  } finally {
    try {
      fs.unlinkSync(path);
    } catch {
      // Gone already, or not removable now: clean removes temporary files an hour old.
    }
  }
}

/** The resolution of a stamp: 1000 ms if it is a whole second, 1 ms if a whole ms, else 0. */
export function stampResolution(mtimeNs: bigint): number {
  if (mtimeNs % 1_000_000_000n === 0n) return 1000;
  if (mtimeNs % 1_000_000n === 0n) return 1;
  return 0;
}

/** The interval of offsets (server ms − monotonic ms) one probe allows. */
export function spanOf(p: ProbeResult): Span {
  const resolution = stampResolution(p.mtimeNs);
  const m = Number(p.mtimeNs / 1000n) / 1000; // epoch ms, to the µs
  // The stamp is the server's time at some moment in [before, after], truncated to the resolution.
  return { lo: m - p.after, hi: m + Math.max(resolution, COARSE_STAMP_MS) - p.before, resolution, at: p.after };
}

/** The broker's clock: the file server's where it can be measured, else this host's. */
export class ServerClock implements Clock {
  private readonly wall: () => number;
  private readonly mono: () => number;
  private readonly probe: Probe;
  private readonly report: Reporter;
  private readonly refreshMs: number;
  /** The offset in use (server epoch ms − monotonic ms), when the server clock is in use. */
  private span: Span | null = null;
  /** wall − mono when last measured: a change beyond STEP_MS means this host's clock stepped. */
  private wallMinusMono = 0;
  /** Monotonic ms of the last attempt (measured or failed). */
  private triedAt = -Infinity;
  private fallbackReason: string | null = null;
  private warned = false;
  /** Where to probe next: a function that runs the probe in a queue's folder (null if that folder is gone). */
  private where: ((probe: Probe) => ProbeResult | null) | null = null;
  private measuring = false;

  constructor(options: ServerClockOptions) {
    this.wall = options.wall ?? Date.now;
    this.mono = options.mono ?? monoNow;
    this.probe = options.probe ?? ((dir) => probeIn(dir, this.mono));
    this.report = options.report;
    this.refreshMs = options.refreshMs ?? REFRESH_MS;
  }

  /** Epoch ms (whole) on the server's clock when it is in use, else on this host's. Measures again when due. */
  now(): number {
    // One reading of the monotonic clock serves the check and the answer (claims take the time per message).
    let mono = this.mono();
    if (this.where !== null && this.due(mono)) {
      this.measure();
      mono = this.mono();
    }
    // Whole ms, as Date.now gives them (task records hold integers).
    return this.span === null ? this.wall() : Math.floor(mono + (this.span.lo + this.span.hi) / 2);
  }

  /** The default expiry_grace in force: SERVER_CLOCK_GRACE with the server clock, else CLIENT_CLOCK_GRACE. */
  grace(): number {
    return this.span === null ? CLIENT_CLOCK_GRACE : SERVER_CLOCK_GRACE;
  }

  /** Where the clock stands. */
  state(): ClockState {
    if (this.span !== null) {
      const mid = (this.span.lo + this.span.hi) / 2;
      const mono = this.mono();
      return { kind: 'server', offsetMs: mid, uncertaintyMs: (this.span.hi - this.span.lo) / 2, resolutionMs: this.span.resolution, skewMs: this.wall() - (mono + mid) };
    }
    if (this.fallbackReason !== null) return { kind: 'fallback', reason: this.fallbackReason };
    return { kind: 'unmeasured' };
  }

  /**
   * Says where to probe (the folder of a queue in use, through `run`). Nothing is measured
   * until a time the tree holds or judges is taken (now()): the "first need". So a publish
   * without a delay, which takes none, costs no probe.
   */
  use(run: (probe: Probe) => ProbeResult | null): void {
    this.where = run;
  }

  /** Measures now if no measurement is in force or one is due (`Broker.clock` asks for it). */
  measureIfDue(): void {
    if (this.where !== null && this.due()) this.measure();
  }

  /** This host's clock (see Clock.local): never measures. */
  local(): number {
    return this.wall();
  }

  /** Whether a measurement is due: never made, older than refreshMs, or this host's clock stepped. */
  private due(mono = this.mono()): boolean {
    if (this.measuring) return false;
    if (mono - this.triedAt >= this.refreshMs) return true;
    return this.span !== null && Math.abs(this.wall() - mono - this.wallMinusMono) > STEP_MS;
  }

  /** One probe, or null when the folder is gone (nothing learnt; the next queue used is tried). */
  private probeOnce(): Span | null {
    const where = this.where!;
    const result = where(this.probe);
    if (result === null) {
      this.where = null;
      return null;
    }
    return spanOf(result);
  }

  private measure(): void {
    this.measuring = true;
    try {
      this.measureNow();
    } finally {
      this.measuring = false;
    }
  }

  private measureNow(): void {
    let span: Span | null;
    try {
      span = this.probeOnce();
    } catch (err) {
      // The queue's folder went away under the probe (deleted meanwhile): nothing learnt,
      // as when it is gone before (probeOnce's null); the next time taken tries again.
      if (errnoOf(err) === 'ENOENT') return;
      this.triedAt = this.mono();
      this.fallBack(`a probe file could not be written (${errnoOf(err) ?? String(err)})`, err);
      return;
    }
    if (span === null) return;
    this.triedAt = this.mono();
    const kept = this.span;
    if (kept !== null) {
      const merged = intersect(widen(kept, span.at), span);
      if (merged !== null) {
        this.accept(merged);
        return;
      }
      // It moved: the server's clock was set, or the stamps are not a clock. A second probe tells.
      this.report.log('info', `the file server's clock moved by ${Math.round(mid(span) - mid(kept))} ms since it was last measured; measuring again`);
    } else if (span.resolution < 1000) {
      // A fine stamp: one probe pins it to within the write's time.
      this.accept(span);
      return;
    }
    // A whole-second stamp may be coarser still (2 s on some file systems), or not a clock
    // at all: a second probe must agree with the first.
    let second: Span | null;
    try {
      second = this.probeOnce();
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return; // gone meanwhile: nothing learnt (see above)
      this.fallBack(`a probe file could not be written (${errnoOf(err) ?? String(err)})`, err);
      return;
    }
    if (second === null) return;
    const merged = intersect(span, second);
    if (merged === null) {
      this.fallBack(`the modification times it stamps disagree by ${Math.round(Math.abs(mid(second) - mid(span)))} ms between two probes (not a clock, or one far coarser than a second)`);
      return;
    }
    this.accept(merged);
  }

  private accept(span: Span): void {
    const first = this.span === null;
    this.span = span;
    this.wallMinusMono = this.wall() - this.mono();
    if (this.fallbackReason !== null) this.report.log('info', "the file server's clock is usable again; leases are judged by it");
    this.fallbackReason = null;
    if (first || this.report.logging) {
      const s = this.state();
      if (s.kind === 'server') {
        this.report.log(
          'info',
          `leases by the file server's clock: this host's clock is ${(s.skewMs / 1000).toFixed(3)} s ${s.skewMs >= 0 ? 'ahead of' : 'behind'} it (± ${(s.uncertaintyMs / 1000).toFixed(3)} s, stamps of ${s.resolutionMs === 1000 ? 'whole seconds' : s.resolutionMs === 1 ? 'whole ms' : 'ns'})`,
        );
      }
    }
  }

  private fallBack(reason: string, cause?: unknown): void {
    this.span = null;
    this.fallbackReason = reason;
    const text = `the file server's clock is not used: ${reason}; leases are judged by this host's clock, with the default expiry_grace of ${CLIENT_CLOCK_GRACE} s`;
    if (!this.warned) {
      this.warned = true;
      this.report.warn(new DdmqError('IO', text, { osCode: errnoOf(cause), cause }));
    } else {
      this.report.log('info', text);
    }
  }
}

function mid(s: Span): number {
  return (s.lo + s.hi) / 2;
}

/** A span kept since `s.at`, widened by the drift possible until monotonic `at`, and by the slack. */
function widen(s: Span, at: number): Span {
  const d = Math.max(0, at - s.at) * DRIFT_PER_MS + AGREE_SLACK_MS;
  return { ...s, lo: s.lo - d, hi: s.hi + d };
}

/** The offsets both spans allow (null if none, beyond the slack); it keeps the newer's time. */
function intersect(a: Span, b: Span): Span | null {
  const lo = Math.max(a.lo, b.lo);
  const hi = Math.min(a.hi, b.hi);
  if (lo <= hi) return { lo, hi, resolution: Math.max(a.resolution, b.resolution), at: Math.max(a.at, b.at) };
  if (lo - hi > AGREE_SLACK_MS) return null;
  const m = (lo + hi) / 2; // within the slack: they agree at the point between them
  return { lo: m, hi: m, resolution: Math.max(a.resolution, b.resolution), at: Math.max(a.at, b.at) };
}
