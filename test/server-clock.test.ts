/**
 * The file server's clock (src/store/server-clock.ts), with a fake probe and fake clocks:
 * the offset it measures, whole-second stamps, when it measures again, when it falls back
 * to this host's clock, and the default expiry_grace that follows (a file's setting wins).
 * test/clock-skew.test.ts runs real clients under libfaketime.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, type DdmqError } from '../src/index.js';
import { isMessageName } from '../src/format/names.js';
import { TEMP_PREFIX } from '../src/store/fsx.js';
import type { Reporter } from '../src/store/host.js';
import { CLIENT_CLOCK_GRACE, type Probe, type ProbeResult, REFRESH_MS, SERVER_CLOCK_GRACE, ServerClock } from '../src/store/server-clock.js';
import { errno, ls, patchFs, tempDir } from './helpers.js';

/** A host whose wall clock is `skew` ms off a server, and a probe that stamps files on the server's clock. */
function rig(options: { skew: number; resolution?: 'ns' | 's'; writeMs?: number; stamp?: (serverMs: number) => number }) {
  let mono = 1_000_000; // monotonic ms, any origin
  const serverBase = 1_800_000_000_000; // the server's epoch ms when mono is 0... plus mono
  const server = () => serverBase + mono;
  let skew = options.skew;
  const warnings: DdmqError[] = [];
  const logs: string[] = [];
  const report: Reporter = { warn: (w) => warnings.push(w), logging: true, log: (_l, t) => logs.push(t) };
  let probes = 0;
  let fail: NodeJS.ErrnoException | null = null;
  const probe: Probe = (): ProbeResult => {
    probes++;
    if (fail) throw fail;
    const before = mono;
    mono += (options.writeMs ?? 2) / 2;
    let stampMs = options.stamp ? options.stamp(server()) : server();
    if (options.resolution === 's') stampMs = Math.floor(stampMs / 1000) * 1000;
    mono += (options.writeMs ?? 2) / 2;
    return { before, after: mono, mtimeNs: BigInt(Math.round(stampMs * 1000)) * 1000n + (options.resolution === 's' ? 0n : 123n) };
  };
  const clock = new ServerClock({ wall: () => server() + skew, mono: () => mono, probe, report });
  return {
    clock,
    server,
    warnings,
    logs,
    probes: () => probes,
    advance: (ms: number) => (mono += ms),
    step: (ms: number) => (skew += ms),
    failWith: (e: NodeJS.ErrnoException | null) => (fail = e),
    use: () => clock.use((p) => p('/fake')),
  };
}

describe('server clock (fake probe)', () => {
  it('measures the offset from a fine stamp: a host 120 s ahead or behind reads the server time, and the grace shrinks', () => {
    for (const skew of [120_000, -120_000, 0]) {
      const r = rig({ skew });
      assert.equal(r.clock.now(), r.server() + skew, 'not measured yet: this host clock');
      assert.equal(r.clock.grace(), CLIENT_CLOCK_GRACE);
      r.use();
      assert.equal(r.probes(), 1, 'a fine stamp needs one probe');
      assert.ok(Math.abs(r.clock.now() - r.server()) <= 25, `skew ${skew}: ${r.clock.now() - r.server()} ms off`);
      assert.ok(Number.isInteger(r.clock.now()), 'whole ms, as Date.now');
      const s = r.clock.state();
      assert.equal(s.kind, 'server');
      if (s.kind === 'server') assert.ok(Math.abs(s.skewMs - skew) <= 25);
      assert.equal(r.clock.grace(), SERVER_CLOCK_GRACE);
      assert.deepEqual(r.warnings, []);
    }
  });

  it('whole-second stamps: the uncertainty is taken into the bound, and later probes at other phases narrow it', () => {
    const r = rig({ skew: 120_000, resolution: 's' });
    r.advance(300); // the probe lands 300 ms into a server second
    r.use();
    assert.equal(r.probes(), 2, 'a whole-second stamp is checked by a second probe');
    let s = r.clock.state();
    assert.ok(s.kind === 'server' && s.resolutionMs === 1000);
    if (s.kind !== 'server') return;
    assert.ok(s.uncertaintyMs >= 400 && s.uncertaintyMs <= 520, `uncertainty ${s.uncertaintyMs}`);
    assert.ok(Math.abs(r.clock.now() - r.server()) <= s.uncertaintyMs + 1, 'the truth lies within the bound');
    const first = s.uncertaintyMs;
    r.advance(REFRESH_MS + 500); // the next probe lands at another phase of the second
    r.clock.now();
    s = r.clock.state();
    assert.ok(s.kind === 'server');
    if (s.kind !== 'server') return;
    assert.ok(s.uncertaintyMs < first - 100, `narrowed: ${first} -> ${s.uncertaintyMs}`);
    assert.ok(Math.abs(r.clock.now() - r.server()) <= s.uncertaintyMs + 1);
    assert.equal(r.probes(), 3, 'an agreeing refresh is one probe');
  });

  it('measures again every REFRESH_MS and when this host clock steps, not on every call', () => {
    const r = rig({ skew: 5_000 });
    r.use();
    for (let i = 0; i < 100; i++) {
      r.advance(1000);
      r.clock.now();
    }
    assert.equal(r.probes(), 1, 'within the interval: no probe');
    r.advance(REFRESH_MS);
    r.clock.now();
    assert.equal(r.probes(), 2, 'after the interval: measured again');
    r.step(-60_000); // NTP steps this host clock back a minute
    assert.ok(Math.abs(r.clock.now() - r.server()) <= 25, 'the offset is kept on the monotonic clock: a step does not move it');
    assert.equal(r.probes(), 3, 'a step is a reason to measure again');
    r.clock.now();
    assert.equal(r.probes(), 3);
  });

  it('follows the server clock when it is set (two new probes agree)', () => {
    const r = rig({ skew: 0 });
    r.use();
    let jump = 0;
    const r2 = rig({ skew: 0, stamp: (ms) => ms + jump });
    r2.use();
    jump = 90_000;
    r2.advance(REFRESH_MS);
    const read = r2.clock.now();
    assert.ok(Math.abs(read - (r2.server() + 90_000)) <= 25, `now ${read - r2.server()}`);
    assert.equal(r2.probes(), 3);
    assert.deepEqual(r2.warnings, []);
    assert.ok(r2.logs.some((l) => /moved by 90000 ms/.test(l)), r2.logs.join('\n'));
  });

  it('falls back to this host clock, with one warning, when the probe cannot be written; tries again later', () => {
    const r = rig({ skew: 120_000 });
    r.failWith(errno('EROFS', 'read-only file system'));
    r.use();
    assert.equal(r.clock.now(), r.server() + 120_000, 'this host clock');
    assert.equal(r.clock.grace(), CLIENT_CLOCK_GRACE);
    assert.deepEqual(r.clock.state(), { kind: 'fallback', reason: 'a probe file could not be written (EROFS)' });
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!.message, /file server's clock is not used: a probe file could not be written \(EROFS\).*expiry_grace of 30 s/);
    r.clock.now();
    assert.equal(r.probes(), 1, 'not tried on every call');
    r.advance(REFRESH_MS);
    r.clock.now();
    assert.equal(r.probes(), 2);
    assert.equal(r.warnings.length, 1, 'warned once');
    r.failWith(null);
    r.advance(REFRESH_MS);
    r.clock.now();
    assert.equal(r.clock.state().kind, 'server', 'usable again');
    assert.equal(r.clock.grace(), SERVER_CLOCK_GRACE);
  });

  it('falls back when whole-second stamps disagree between probes (not a clock, or one far coarser than a second)', () => {
    const stamps = [0, 7_000];
    const r = rig({ skew: 0, resolution: 's', stamp: (ms) => ms + (stamps.shift() ?? 0) });
    r.use();
    const s = r.clock.state();
    assert.equal(s.kind, 'fallback');
    assert.match(s.kind === 'fallback' ? s.reason : '', /disagree by (69|70)\d\d ms between two probes/);
    assert.equal(r.clock.grace(), CLIENT_CLOCK_GRACE);
    assert.equal(r.warnings.length, 1);
  });
});

describe('server clock (broker)', () => {
  it('is used by default; the probe is a temporary file, not a message, and none is left behind', async () => {
    const root = tempDir();
    const created: string[] = [];
    const restore = patchFs('openSync', (original) => ((path: fs.PathLike, ...rest: unknown[]) => {
      created.push(String(path));
      return (original as (...a: unknown[]) => number)(path, ...rest);
    }) as typeof fs.openSync);
    let broker: Broker;
    try {
      broker = await Broker.open(root, { create: true });
      await broker.publish('q', 'x');
    } finally {
      restore();
    }
    const probes = created.filter((p) => p.includes('-clock-'));
    assert.equal(probes.length, 1, created.join('\n'));
    const name = probes[0]!.split('/').pop()!;
    assert.ok(name.startsWith(TEMP_PREFIX) && !isMessageName(name) && !name.includes('.ddmq'), name);
    assert.equal(ls(join(root, 'q')).filter((n) => n.startsWith(TEMP_PREFIX)).length, 0);
    assert.equal(broker.clock().kind, 'server');
    assert.equal((await broker.settings('q')).expiry_grace, SERVER_CLOCK_GRACE);
    // Task records are written on it and read back by stats (their times are whole ms).
    const [msg] = await broker.consume('q');
    await broker.ack(msg!);
    assert.equal((await broker.stats('q')).queues[0]!.all_time.done, 1);
  });

  it('an expiry_grace set in the root or the queue file wins over the server clock default', async () => {
    const root = tempDir();
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('q');
    await broker.createQueue('r');
    assert.equal((await broker.settings('q')).expiry_grace, SERVER_CLOCK_GRACE);
    await broker.setSettings(undefined, { expiry_grace: 40 });
    assert.equal((await broker.settings('q')).expiry_grace, 40);
    await broker.setSettings('r', { expiry_grace: 12 });
    assert.equal((await broker.settings('r')).expiry_grace, 12);
    await broker.setSettings(undefined, { expiry_grace: null });
    assert.equal((await broker.settings('q')).expiry_grace, SERVER_CLOCK_GRACE);
    assert.equal((await broker.settings()).expiry_grace, SERVER_CLOCK_GRACE);
  });

  it('serverClock: false, DDMQ_SERVER_CLOCK=0 and a given now keep this host clock and the grace of 30 s', async () => {
    const root = tempDir();
    const off = await Broker.open(root, { create: true, serverClock: false });
    await off.createQueue('q');
    assert.deepEqual(off.clock('q'), { kind: 'off' });
    assert.equal((await off.settings('q')).expiry_grace, CLIENT_CLOCK_GRACE);
    const given = await Broker.open(root, { now: () => 5 });
    assert.deepEqual(given.clock('q'), { kind: 'off' });
    assert.equal((await given.settings('q')).expiry_grace, CLIENT_CLOCK_GRACE);
    process.env.DDMQ_SERVER_CLOCK = '0';
    try {
      const env = await Broker.open(root);
      assert.deepEqual(env.clock('q'), { kind: 'off' });
    } finally {
      delete process.env.DDMQ_SERVER_CLOCK;
    }
  });

  it('a probe that cannot be written: one warning, this host clock, grace 30 s; the call itself goes on', async () => {
    const root = tempDir();
    const warnings: DdmqError[] = [];
    const restore = patchFs('openSync', (original) => ((path: fs.PathLike, ...rest: unknown[]) => {
      if (String(path).includes('-clock-')) throw errno('EROFS', 'read-only file system');
      return (original as (...a: unknown[]) => number)(path, ...rest);
    }) as typeof fs.openSync);
    try {
      const broker = await Broker.open(root, { create: true, onWarning: (w) => warnings.push(w) });
      await broker.publish('q', 'x');
      await broker.publish('r', 'y');
      assert.equal(broker.clock().kind, 'fallback');
      assert.equal((await broker.settings('q')).expiry_grace, CLIENT_CLOCK_GRACE);
      assert.equal((await broker.consume('q')).length, 1);
    } finally {
      restore();
    }
    assert.equal(warnings.length, 1, warnings.map((w) => w.message).join('\n'));
    assert.match(warnings[0]!.message, /EROFS/);
  });

  it("the root's settings measure it in the root's first usable queue: a link in place of one is passed over", async () => {
    const root = tempDir();
    const setup = await Broker.open(root, { create: true });
    await setup.createQueue('q');
    const elsewhere = tempDir();
    fs.writeFileSync(join(elsewhere, 'ddmq.yaml'), '{}\n');
    fs.symlinkSync(elsewhere, join(root, 'a'));
    const broker = await Broker.open(root);
    assert.equal((await broker.settings()).expiry_grace, SERVER_CLOCK_GRACE);
    assert.equal(broker.clock().kind, 'server');
    assert.deepEqual(fs.readdirSync(elsewhere), ['ddmq.yaml'], 'nothing written through the link');
  });

  it('ddmq settings tells which clock the default expiry_grace comes from', async () => {
    const root = tempDir();
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('q');
    const { runChild, CLI } = await import('./helpers.js');
    const on = await runChild(process.execPath, [CLI, 'settings', root, 'q']);
    assert.match(on.out, /expiry_grace: 5 {2}\(default: file server's clock in use\)/, on.out + on.err);
    const rootView = await runChild(process.execPath, [CLI, 'settings', root]);
    assert.match(rootView.out, /expiry_grace: 5 {2}\(default: file server's clock in use\)/, rootView.out + rootView.err);
    const off = await runChild(process.execPath, [CLI, 'settings', root, 'q'], { env: { DDMQ_SERVER_CLOCK: '0' } });
    assert.match(off.out, /expiry_grace: 30 {2}\(default: this host's clock\)/, off.out + off.err);
  });
});
