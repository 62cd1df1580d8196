/**
 * What an idle waiting consumer costs the file system (issue 12, "a bounded load on the
 * metadata server"), counted, never timed: node:fs's calls on the root's paths are
 * recorded while a clock the test moves drives the polls (notification off, as on a
 * network file system, where no event crosses hosts). And what the cheap check must not
 * cost in return: a message that comes, through a folder time that moved, within the
 * folder time's resolution of the last listing (the trust rule), or with no trace in the
 * folder's status at all (the safety net), a delayed one that falls due, a queue deleted.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { Broker, messages, work } from '../src/index.js';
import { AUTO_TEMP_SWEEP_MS } from '../src/store/clean.js';
import { IDLE_DELAYED_MS, IDLE_FULL_MS } from '../src/store/cursor.js';
import { listingStalenessOf, SSHFS_LISTING_STALENESS_MS, TRUST_MS } from '../src/store/folder-mark.js';
import { TEMP_PREFIX } from '../src/store/fsx.js';
import { FakeTime, settle } from './fake-time.js';
import { patchFs, setMtime, tempDir } from './helpers.js';

/** The node:fs calls that reach a file system's metadata (reads and writes of file content and closes aside). */
const METADATA_CALLS = [
  'lstatSync',
  'statSync',
  'fstatSync',
  'openSync',
  'readdirSync',
  'opendirSync',
  'existsSync',
  'accessSync',
  'realpathSync',
  'renameSync',
  'unlinkSync',
  'mkdirSync',
  'rmdirSync',
  'linkSync',
  'symlinkSync',
  'readFileSync',
  'writeFileSync',
] as const;

const restores: (() => void)[] = [];
afterEach(() => {
  for (const r of restores.splice(0).reverse()) r();
});

/**
 * Counts the metadata calls on paths under `root` (and on folders pinned under it, reached
 * through /proc/PID/fd/N, and on descriptors opened there), each as [name, path].
 */
function countCalls(root: string) {
  const calls: [string, string][] = [];
  const ours = new Set<number>();
  const under = (p: unknown) => {
    const s = String(p);
    return s.startsWith(root) || s.startsWith(`/proc/${process.pid}/fd/`) || s.startsWith('/proc/self/fd/');
  };
  for (const name of METADATA_CALLS) {
    restores.push(
      patchFs(name, (orig) => ((...args: unknown[]) => {
        const first = args[0];
        const counted = typeof first === 'number' ? ours.has(first) : under(first);
        const result = (orig as (...a: unknown[]) => unknown)(...args);
        if (counted) calls.push([name, typeof first === 'number' ? `fd ${first}` : String(first)]);
        if (name === 'openSync' && counted) ours.add(result as number);
        return result;
      }) as never),
    );
  }
  restores.push(
    patchFs('closeSync', (orig) => ((fd: number) => {
      ours.delete(fd);
      return orig(fd);
    }) as typeof fs.closeSync),
  );
  return {
    calls,
    /** Calls since `from` (an index into calls). */
    since: (from: number) => calls.slice(from),
    /** Listings of `dir` among the calls since `from`. */
    listings: (dir: string, from = 0) => calls.slice(from).filter(([n, p]) => n === 'readdirSync' && p === dir).length,
  };
}

/** The calls by name and path, most first (DDMQ_DEBUG_CALLS=1 prints them). */
function breakdown(calls: [string, string][], root: string): string {
  const by = new Map<string, number>();
  for (const [name, path] of calls) {
    const key = `${name} ${path.replace(root, 'ROOT').replace(/\/proc\/\d+\/fd\/\d+/, 'PINNED')}`;
    by.set(key, (by.get(key) ?? 0) + 1);
  }
  return [...by].sort((x, y) => y[1] - x[1]).map(([key, n]) => `# ${n} ${key}`).join('\n');
}

/**
 * A folder whose status moves only in whole seconds of the test's clock, when the test
 * says it changed (as the file server of sshfs or MooseFS stamps it): its lstat shows
 * that time, and nothing else that moves with its entries.
 */
function wholeSecondFolder(dir: string, time: FakeTime) {
  let stamp = Math.floor(time.now() / 1000) * 1000;
  restores.push(
    patchFs('lstatSync', (orig) => ((path: fs.PathLike, options?: fs.StatSyncOptions) => {
      const st = (orig as (p: fs.PathLike, o?: fs.StatSyncOptions) => fs.Stats | undefined)(path, options);
      if (st === undefined || String(path) !== dir) return st;
      return Object.assign(Object.create(Object.getPrototypeOf(st) as object) as fs.Stats, st, { mtimeMs: stamp, ctimeMs: stamp, size: 4096, nlink: 2 });
    }) as typeof fs.lstatSync),
  );
  return {
    /** The folder changed now: its time is this whole second of the test's clock. */
    changed: () => void (stamp = Math.floor(time.now() / 1000) * 1000),
  };
}

/** A root with queue q, a broker on the test's clock with notification off, and another "host". */
async function setup(time: FakeTime, options: { pollIntervalMs?: number } = {}) {
  const root = join(tempDir(), 'root');
  const broker = await Broker.open(root, { create: true, now: time.now, timers: time, notify: false, ...options });
  await broker.createQueue('q');
  const other = await Broker.open(root, { now: time.now });
  return { root, dir: join(root, 'q'), broker, other };
}

/** Moves the clock until `promise` settles (or `ms` pass); how long that took, or null. */
async function advanceUntil<T>(time: FakeTime, promise: Promise<T>, ms: number, step = 50): Promise<number | null> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let t = 0; t <= ms; t += step) {
    await settle();
    if (done) return t;
    await time.advance(step);
  }
  await settle();
  return done ? ms : null;
}

describe('an idle waiting consumer', () => {
  it('makes at most 2 metadata calls a second (consume with wait), and lists its folder at least every IDLE_FULL_MS all the same', async () => {
    const time = new FakeTime();
    const { root, dir, broker, other } = await setup(time);
    await other.publish('q', 'last');
    assert.equal((await broker.consume('q'))[0]?.text, 'last', 'a busy moment first: the folder just changed');
    const count = countCalls(root);
    const seconds = 300;
    const waiting = broker.consume('q', { wait: seconds });
    const perMinute: number[] = [];
    for (let minute = 0; minute < seconds / 60; minute++) {
      const from = count.calls.length;
      await time.advance(60_000);
      perMinute.push(count.calls.length - from);
    }
    assert.deepEqual(await waiting, []);
    const total = count.calls.length;
    console.log(`# idle consume: ${total} metadata calls in ${seconds} s (${(total / seconds).toFixed(2)}/s); per minute ${perMinute.join(', ')}; ${count.listings(dir)} listings`);
    assert.ok(total / seconds <= 2, `${total} calls in ${seconds} s: at most 2 a second`);
    for (const n of perMinute) assert.ok(n <= 120, `${n} calls in a minute`);
    // The safety net: listed at least once every IDLE_FULL_MS (plus a poll), however still the folder is.
    assert.ok(count.listings(dir) >= Math.floor((seconds * 1000) / (IDLE_FULL_MS + 1200)), `${count.listings(dir)} listings in ${seconds} s`);
    broker.close();
  });

  it('work() and the message iterator, idle, make at most 2 metadata calls a second too', async () => {
    for (const kind of ['work', 'messages'] as const) {
      const time = new FakeTime();
      const { root, broker, other } = await setup(time);
      await other.publish('q', 'first');
      const count = countCalls(root);
      const seen: string[] = [];
      const stop = new AbortController();
      let finished: Promise<unknown>;
      if (kind === 'work') {
        const w = work(broker, 'q', (m) => void seen.push(m.text), { timers: time });
        finished = w.done;
        stop.signal.addEventListener('abort', () => w.stop());
      } else {
        finished = (async () => {
          for await (const m of messages(broker, 'q', { signal: stop.signal, timers: time })) {
            seen.push(m.text);
            await broker.ack(m);
          }
        })();
      }
      await time.advance(2000);
      assert.deepEqual(seen, ['first'], `${kind}: took the message`);
      const from = count.calls.length;
      const seconds = 300;
      await time.advance(seconds * 1000);
      const n = count.calls.length - from;
      console.log(`# idle ${kind}: ${n} metadata calls in ${seconds} s (${(n / seconds).toFixed(2)}/s)`);
      if (process.env.DDMQ_DEBUG_CALLS) console.log(breakdown(count.since(from), root));
      assert.ok(n / seconds <= 2, `${kind}: ${n} calls in ${seconds} s: at most 2 a second`);
      // And it still takes what another host publishes, at its next poll.
      await other.publish('q', 'second');
      await time.advance(1300);
      assert.deepEqual(seen, ['first', 'second'], `${kind}: took the next message`);
      stop.abort();
      await advanceUntil(time, finished, 10_000);
      for (const r of restores.splice(0).reverse()) r();
      broker.close();
    }
  });

  it("a consume that looks lists a folder whose time is too recent to trust; a waiting consumer's poll does not, until it is old enough", async () => {
    const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000 + 100);
    const { root, dir, broker, other } = await setup(time);
    const folder = wholeSecondFolder(dir, time);
    await other.publish('q', 'first');
    assert.equal((await broker.consume('q'))[0]?.text, 'first');
    folder.changed();
    await time.advance(100);
    assert.deepEqual(await broker.consume('q'), []); // lists: nothing; marked, too recent to trust
    await other.publish('q', 'same second');
    folder.changed();
    const count = countCalls(root);
    const got = await broker.consume('q');
    assert.deepEqual(got.map((m) => m.text), ['same second'], 'a look found it at once, though the folder looked unchanged');
    assert.equal(count.listings(dir), 1, 'by one listing');
    // A waiting consumer's polls, with the folder's time too recent: lstats alone.
    await time.advance(100);
    assert.deepEqual(await broker.consume('q'), []);
    const waiting = broker.consume('q', { wait: 2 }); // its first look lists, as any look
    await settle();
    const from = count.calls.length;
    await time.advance(2000);
    assert.deepEqual(await waiting, []);
    assert.ok(count.since(from).every(([name, path]) => name === 'lstatSync' && path === dir), 'polls within TRUST_MS of the folder\'s time are lstats alone');
    broker.close();
  });

  it('the automatic clean looks for temporary files of killed writers every AUTO_TEMP_SWEEP_MS, not at every clean', async () => {
    const time = new FakeTime();
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true, now: time.now, timers: time, notify: false, cleanIntervalMs: 1000 });
    await broker.createQueue('q');
    const temp = (n: number) => {
      const path = join(root, 'q', `${TEMP_PREFIX}killed-${n}`);
      fs.writeFileSync(path, 'half');
      setMtime(path, 2 * 3600_000);
      return path;
    };
    const first = temp(1);
    await broker.consume('q');
    assert.equal(fs.existsSync(first), false, 'the first automatic clean removed it');
    const second = temp(2);
    await time.advance(2000);
    await broker.consume('q');
    assert.equal(fs.existsSync(second), true, 'the next clean (2 s later) did not look for temporary files');
    await time.advance(AUTO_TEMP_SWEEP_MS);
    await broker.consume('q');
    assert.equal(fs.existsSync(second), false, 'one AUTO_TEMP_SWEEP_MS later it did');
    broker.close();
  });

  it("finds a message from another host at its next poll: the folder's time moved", async () => {
    const time = new FakeTime();
    const { root, broker, other } = await setup(time);
    const count = countCalls(root);
    const waiting = broker.consume('q', { wait: 600 });
    await time.advance(60_000); // long idle: the cheap check trusts the folder's time
    const from = count.calls.length;
    await other.publish('q', 'hello');
    const publishCalls = count.calls.length - from;
    const took = await advanceUntil(time, waiting, 5000);
    assert.ok(took !== null && took <= 1250, `found within a poll (${took} ms)`);
    assert.deepEqual((await waiting).map((m) => m.text), ['hello']);
    assert.ok(publishCalls > 0);
    broker.close();
  });

  it('lists once more a folder whose time was within TRUST_MS of the last listing: a message that came in the same whole second is found (the trust rule)', async () => {
    const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000 + 100);
    const { dir, broker, other } = await setup(time);
    const folder = wholeSecondFolder(dir, time);
    await other.publish('q', 'first');
    assert.equal((await broker.consume('q'))[0]?.text, 'first');
    folder.changed(); // the claim's rename, stamped at this whole second
    await time.advance(200);
    // The consumer lists (nothing), then another host publishes in the same second: the
    // folder's time does not move (whole seconds), and nothing else in its status does.
    const waiting = broker.consume('q', { wait: 600 });
    await time.advance(100);
    await other.publish('q', 'same second');
    folder.changed();
    const took = await advanceUntil(time, waiting, IDLE_FULL_MS + 5000);
    // Listed again once the folder's time is TRUST_MS old (at the first poll after), not by the safety net.
    assert.ok(took !== null && took <= TRUST_MS + 1250, `found by a listing within TRUST_MS and a poll (${took} ms), not by the safety net`);
    assert.deepEqual((await waiting).map((m) => m.text), ['same second']);
    broker.close();
  });

  it("finds a message whose coming left no trace in the folder's status by the safety net's listing, within IDLE_FULL_MS", async () => {
    const time = new FakeTime();
    const { root, dir, broker, other } = await setup(time);
    wholeSecondFolder(dir, time); // its time never moves
    const count = countCalls(root);
    const waiting = broker.consume('q', { wait: 600 });
    await time.advance(10_000);
    const from = count.calls.length;
    await other.publish('q', 'unseen');
    const listingsBefore = count.listings(dir, from);
    const took = await advanceUntil(time, waiting, IDLE_FULL_MS + 5000);
    assert.ok(took !== null && took <= IDLE_FULL_MS, `found by the safety net (${took} ms)`);
    assert.ok(took > 5000, `not before the safety net: the cheap check held (${took} ms)`);
    assert.deepEqual((await waiting).map((m) => m.text), ['unseen']);
    assert.equal(listingsBefore, 0);
    broker.close();
  });

  it('moves in a delayed message from another host within IDLE_DELAYED_MS of its time, and reports a queue deleted while it waits', async () => {
    const time = new FakeTime();
    const { root, broker, other } = await setup(time);
    const waiting = broker.consume('q', { wait: 600 });
    await time.advance(60_000);
    await other.publish('q', 'later', { delay: 20 });
    const due = time.now() + 20_000;
    const took = await advanceUntil(time, waiting, 40_000);
    assert.ok(took !== null, 'taken');
    const late = time.now() - due;
    assert.ok(late >= 0 && late <= IDLE_DELAYED_MS + 1250, `taken ${late} ms after it was due`);
    assert.deepEqual((await waiting).map((m) => m.text), ['later']);
    // Deleted while a consumer waits: the next poll's lstat fails, and the full look reports
    // it (a broker without `create`, which would make the queue again).
    const plain = await Broker.open(root, { now: time.now, timers: time, notify: false });
    const again = plain.consume('q', { wait: 600 });
    await time.advance(60_000);
    fs.rmSync(join(root, 'q'), { recursive: true });
    await assert.rejects(async () => {
      await advanceUntil(time, again, 5000);
      await again;
    }, { code: 'QUEUE_MISSING' });
    plain.close();
    broker.close();
  });
});

describe('how much staler than its status a folder listing may be', () => {
  it('is 0 on a local disk, and on each network file system rig what was measured there (21 s on sshfs, whose listings and attributes are cached apart)', () => {
    assert.equal(listingStalenessOf(tempDir()), 0);
    assert.equal(listingStalenessOf(join(tempDir(), 'not', 'made', 'yet')), 0);
    const rigs = JSON.parse(process.env.DDMQ_NETFS ?? '[]') as { name: string; a: string; b: string }[];
    for (const rig of rigs) {
      const expected = rig.name === 'sshfs' ? SSHFS_LISTING_STALENESS_MS : 0;
      assert.equal(listingStalenessOf(rig.a), expected, `${rig.name} through A`);
      assert.equal(listingStalenessOf(join(rig.b, 'ddmq-not-made-yet', 'root')), expected, `${rig.name} through B, below a folder not made yet`);
    }
  });
});
