import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, type BrokerOptions, DdmqError, isDdmqError } from '../src/index.js';
import { parseInFlightName, parseReadyName } from '../src/internals.js';
import { brokerInternals } from '../src/store/internals.js';
import { assertDurable, recordCalls } from './fs-calls.js';
import { errno, ls, manualClock, patchFs, setMtime, tempDir } from './helpers.js';

async function fresh(options: BrokerOptions = {}) {
  const root = join(tempDir(), 'root');
  const warnings: DdmqError[] = [];
  const broker = await Broker.open(root, { create: true, onWarning: (w) => warnings.push(w), ...options });
  await broker.createQueue('q');
  return { root, broker, warnings, dir: join(root, 'q'), work: join(root, 'q', 'work') };
}

const code = (c: string) => (e: unknown) => isDdmqError(e) && e.code === c;

/**
 * Another client takes the next `count` ready files this process tries to claim, just
 * before its rename (they go to `away`); restore() ends it. Told by the names alone: with
 * DDMQ_PIN_FOLDERS the paths run through /proc/self/fd.
 */
function competitorTakesFirst(count: number) {
  const away = tempDir('ddmq-taken-');
  const restore = patchFs('renameSync', (orig) => ((from: fs.PathLike, to: fs.PathLike) => {
    if (count > 0 && parseReadyName(basename(String(from))) !== null && parseInFlightName(basename(String(to))) !== null) {
      count--;
      orig(from, join(away, basename(String(from)))); // the competitor's rename came first
    }
    orig(from, to);
  }) as typeof fs.renameSync);
  return { away, restore };
}

describe('opening a root', () => {
  it('ROOT_MISSING without create; create makes the folder and its ddmq.yaml', async () => {
    const root = join(tempDir(), 'a', 'b');
    await assert.rejects(Broker.open(root), code('ROOT_MISSING'));
    assert.equal(fs.existsSync(root), false);
    await Broker.open(root, { create: true });
    assert.equal(fs.readFileSync(join(root, 'ddmq.yaml'), 'utf8'), '');
  });

  it('ROOT_UNINITIALISED for a folder without ddmq.yaml; a file is not a root', async () => {
    const dir = tempDir();
    await assert.rejects(Broker.open(dir), code('ROOT_UNINITIALISED'));
    fs.writeFileSync(join(dir, 'file'), 'x');
    await assert.rejects(Broker.open(join(dir, 'file')), code('ROOT_MISSING'));
    await assert.rejects(Broker.open(''), code('INVALID_ARGUMENT'));
    await assert.rejects(Broker.open('a\0b'), code('INVALID_ARGUMENT'));
  });
});

describe('the public surface', () => {
  it("a Broker's host plumbing is not among its members; the worker and the command line reach it through brokerInternals", async () => {
    const { broker, warnings } = await fresh({ now: () => 1_234_000 });
    const plumbing = ['put', 'warn', 'log', 'logging', 'now', 'cachedSettings', 'queue', 'record', 'pruneRecords', 'announceWorker', 'recordLeaseLost', 'fsync', 'pinFolders', 'listingIntervalMs', 'cleanIntervalMs', 'pollIntervalMs', 'notify', 'create'];
    const members = new Set<string>();
    for (let o: object | null = broker; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) for (const k of Object.getOwnPropertyNames(o)) members.add(k);
    assert.deepEqual(plumbing.filter((k) => members.has(k)), []);
    assert.ok(members.has('publish') && members.has('redrive') && members.has('root'), 'the public methods are still there');
    const inner = brokerInternals(broker);
    assert.equal(inner.clock.now(), 1_234_000);
    inner.report.warn(new DdmqError('IO', 'said'));
    assert.deepEqual(warnings.map((w) => w.message), ['said']);
    assert.equal((await inner.queue('q')).name, 'q');
    assert.equal(inner.config.root, broker.root);
    assert.throws(() => brokerInternals({}), code('INVALID_ARGUMENT'));
    const entry: Record<string, unknown> = await import('../src/index.js');
    assert.equal(entry.brokerInternals, undefined, 'not exported from the main entry');
  });
});

describe('queues', () => {
  it('create makes QUEUE/, work/ and a ddmq.yaml of {} that inherits the root settings', async () => {
    const { broker, root, dir } = await fresh();
    assert.deepEqual(ls(dir), ['ddmq.yaml', 'work']);
    assert.equal(fs.readFileSync(join(dir, 'ddmq.yaml'), 'utf8'), '{}\n');
    assert.equal(await broker.createQueue('q'), false);
    await broker.setSettings(undefined, { priority: 5 });
    assert.equal((await broker.settings('q')).priority, 5);
    // Only what differs from the layers above is written.
    await broker.createQueue('other', { priority: 5, message_timeout: 30 });
    assert.equal(fs.readFileSync(join(root, 'other', 'ddmq.yaml'), 'utf8'), 'message_timeout: 30\n');
    await assert.rejects(broker.createQueue('../evil'), code('INVALID_NAME'));
    await assert.rejects(broker.createQueue('x', { priority: -1 }), code('INVALID_SETTING'));
    assert.deepEqual(ls(root), ['ddmq.yaml', 'other', 'q']);
  });

  it('lists only folders with a ddmq.yaml and a valid name', async () => {
    const { broker, root } = await fresh();
    fs.mkdirSync(join(root, 'notaqueue'));
    fs.mkdirSync(join(root, 'bad name'));
    fs.writeFileSync(join(root, 'bad name', 'ddmq.yaml'), '{}');
    fs.writeFileSync(join(root, 'file'), '');
    await broker.createQueue('a');
    assert.deepEqual(await broker.listQueues(), ['a', 'q']);
  });

  it('delete removes the queue with its messages; refuses, deleting nothing, if foreign files are there', async () => {
    const { broker, root, dir } = await fresh();
    await broker.publish('q', 'one');
    await broker.publish('q', 'two');
    await broker.consume('q');
    fs.writeFileSync(join(dir, 'notes.txt'), 'mine');
    await assert.rejects(broker.deleteQueue('q'), (e) => code('FOREIGN_FILES')(e) && /notes\.txt/.test((e as Error).message));
    assert.equal((await broker.counts('q'))[0]!.ready, 1);
    fs.unlinkSync(join(dir, 'notes.txt'));
    await broker.deleteQueue('q');
    assert.deepEqual(ls(root), ['ddmq.yaml']);
    await assert.rejects(broker.deleteQueue('q'), code('QUEUE_MISSING'));
    await assert.rejects((await Broker.open(root)).publish('q', 'x'), code('QUEUE_MISSING'));
  });
});

describe('publish', () => {
  it('writes the whole message file with every SPEC key, and no temporary file stays', async () => {
    const { broker, dir } = await fresh();
    const msg = await broker.publish('q', 'hello', { priority: 3, lease: 60, requeueLimit: 2, extra: { headers: { a: 1 } } });
    assert.deepEqual(ls(dir), [msg.filename, 'ddmq.yaml', 'work'].sort());
    const data = JSON.parse(fs.readFileSync(join(dir, msg.filename), 'utf8'));
    assert.deepEqual(data, {
      message: 'hello',
      queue: 'q',
      priority: 3,
      queue_number: msg.queueNumber,
      id: msg.id,
      filename: msg.filename,
      timeout: 60,
      requeue: true,
      requeue_counter: 0,
      requeue_limit: 2,
      headers: { a: 1 },
    });
    assert.match(msg.filename, /^3\.\d{20}\.ddmq[0-9a-f]{32}$/);
  });

  it('takes any JSON value, and defaults from settings; requeue_prio implies requeue', async () => {
    const { broker } = await fresh();
    await broker.setSettings('q', { priority: 7, requeue: false });
    const obj = await broker.publish('q', { list: [1, 'two'], n: null });
    assert.deepEqual([obj.priority, obj.requeue], [7, false]);
    assert.equal((await broker.publish('q', 'x', { requeuePrio: 4 })).requeue, 4);
    const [a, b] = await broker.consume('q', { n: 2 });
    assert.deepEqual(a!.message, { list: [1, 'two'], n: null });
    assert.equal(b!.requeue, 4);
  });

  it('refuses bad options and values that are not JSON, writing nothing', async () => {
    const { broker, dir, root } = await fresh();
    for (const opts of [{ priority: -1 }, { priority: 1.5 }, { priority: 2 ** 60 }, { lease: 0 }, { lease: -5 }, { requeuePrio: -1 }, { requeueLimit: -1 }, { extra: { id: 'x' } }]) {
      await assert.rejects(broker.publish('q', 'x', opts as never), code('INVALID_ARGUMENT'), JSON.stringify(opts));
    }
    await assert.rejects(broker.publish('q', 10n), code('INVALID_ARGUMENT'));
    await assert.rejects(broker.publish('../x', 'x'), code('INVALID_NAME'));
    await assert.rejects((await Broker.open(root)).publish('missing', 'x'), code('QUEUE_MISSING'));
    assert.deepEqual(ls(dir), ['ddmq.yaml', 'work']);
    assert.deepEqual(ls(root), ['ddmq.yaml', 'q']);
  });

  it('with create, makes a missing queue', async () => {
    const { broker, root } = await fresh();
    await broker.publish('newq', 'x');
    assert.deepEqual(ls(join(root, 'newq')).length, 3);
    const strict = await Broker.open(root);
    await assert.rejects(strict.publish('other', 'x'), code('QUEUE_MISSING'));
  });

  it('with fsync on, still writes the same files, syncing the data before the rename and the folder after it', async () => {
    const { broker, dir } = await fresh({ fsync: true });
    const rec = recordCalls();
    try {
      const m = await broker.publish('q', 'durable');
      rec.mark('publish');
      assert.ok(ls(dir).includes(m.filename));
      assertDurable(rec.events, m.filename, 'publish');
    } finally {
      rec.stop();
    }
  });
});

describe('consume', () => {
  it('serves by priority, then publish order, and moves each message into work/ with its lease', async () => {
    const clock = manualClock();
    const { broker, dir, work } = await fresh({ now: clock.now });
    const published = [];
    for (const p of [5, 1, 5, 1000, 999, 0, 1]) published.push(await broker.publish('q', `p${p}-${published.length}`, { priority: p }));
    const got = await broker.consume('q', { n: 10 });
    assert.deepEqual(got.map((m) => m.text), ['p0-5', 'p1-1', 'p1-6', 'p5-0', 'p5-2', 'p999-4', 'p1000-3']);
    assert.deepEqual(ls(dir), ['ddmq.yaml', 'work']);
    assert.equal(ls(work).length, 7);
    for (const m of got) {
      const f = parseInFlightName(m.filename)!;
      assert.equal(f.expiry, Math.floor(clock.now() / 1000) + 600);
      assert.equal(f.token.length, 12);
      assert.ok(fs.existsSync(join(work, m.filename)));
    }
    assert.deepEqual(await broker.consume('q'), []);
    assert.equal(await broker.consumeOne('q'), null);
  });

  it('lease: the call over the message over the queue', async () => {
    const clock = manualClock();
    const { broker } = await fresh({ now: clock.now });
    await broker.setSettings('q', { message_timeout: 100 });
    await broker.publish('q', 'a');
    await broker.publish('q', 'b', { lease: 50 });
    await broker.publish('q', 'c', { lease: 50 });
    const nowSec = Math.floor(clock.now() / 1000);
    const [a, b] = await broker.consume('q', { n: 2 });
    assert.equal(parseInFlightName(a!.filename)!.expiry, nowSec + 100);
    assert.equal(parseInFlightName(b!.filename)!.expiry, nowSec + 50);
    const [c] = await broker.consume('q', { lease: 7 });
    assert.equal(parseInFlightName(c!.filename)!.expiry, nowSec + 7);
    await assert.rejects(broker.consume('q', { n: 0 }), code('INVALID_ARGUMENT'));
    await assert.rejects(broker.consume('q', { lease: 0 }), code('INVALID_ARGUMENT'));
  });

  it('does not list the folder again for every message (2,000 drained with 2 listings)', async () => {
    const clock = manualClock();
    const listings: string[] = [];
    const { broker } = await fresh({ now: clock.now, log: (_l, t) => t.startsWith('listed') && listings.push(t) });
    for (let i = 0; i < 2000; i++) await broker.publish('q', i);
    let drained = 0;
    for (;;) {
      const got = await broker.consume('q', { skipCleaning: true });
      if (got.length === 0) break;
      assert.equal(got[0]!.message, drained);
      drained++;
    }
    assert.equal(drained, 2000);
    assert.equal(listings.length, 2, listings.join('\n'));
  });

  it("sees another client's new message once its listing is older than the interval", async () => {
    const clock = manualClock();
    const { root, broker } = await fresh({ now: clock.now, listingIntervalMs: 1000 });
    const other = await Broker.open(root);
    for (const t of ['a', 'b', 'c']) await other.publish('q', t);
    assert.equal((await broker.consumeOne('q'))!.text, 'a');
    await other.publish('q', 'urgent', { priority: 0 });
    assert.equal((await broker.consumeOne('q'))!.text, 'b'); // served from the cached listing
    clock.advance(1001);
    assert.equal((await broker.consumeOne('q'))!.text, 'urgent');
    assert.equal((await broker.consumeOne('q'))!.text, 'c');
  });

  it('skips files that are not messages and names that do not parse', async () => {
    const { broker, dir } = await fresh();
    fs.writeFileSync(join(dir, 'README'), 'x');
    fs.writeFileSync(join(dir, '.tmp-123-abc'), '{"message":"half');
    fs.writeFileSync(join(dir, 'x.ddmq.bak'), '{}');
    await broker.publish('q', 'real');
    assert.deepEqual((await broker.consume('q', { n: 5 })).map((m) => m.text), ['real']);
  });

  it('makes work/ again if it was deleted, rather than losing the claim', async () => {
    const { broker, work } = await fresh();
    await broker.publish('q', 'x');
    fs.rmdirSync(work);
    assert.equal((await broker.consumeOne('q', { skipCleaning: true }))!.text, 'x');
  });

  it('maps other file-system failures to IO with the OS code', async () => {
    // Plain paths: with pinned folders the same tree is refused as UNSAFE_PATH (work/ is not a folder).
    const { broker, work } = await fresh({ pinFolders: false });
    await broker.publish('q', 'x');
    fs.rmdirSync(work);
    fs.writeFileSync(work, 'not a folder');
    await assert.rejects(broker.consume('q', { skipCleaning: true }), (e) => code('IO')(e) && (e as DdmqError).osCode === 'ENOTDIR');
  });
});

describe('network file system behaviour', () => {
  it('a claiming rename that reports ENOENT but went through still counts as claimed', async () => {
    const { broker } = await fresh();
    await broker.publish('q', 'x');
    const restore = patchFs('renameSync', (orig) => (a, b) => {
      orig(a, b);
      if (String(b).includes('/work/')) throw errno('ENOENT', 'reply lost');
    });
    try {
      assert.equal((await broker.consumeOne('q', { skipCleaning: true }))!.text, 'x');
    } finally {
      restore();
    }
  });

  it('ESTALE is tried again', async () => {
    const { broker } = await fresh();
    await broker.publish('q', 'x');
    let stale = 2;
    const restore = patchFs('renameSync', (orig) => (a, b) => {
      if (stale-- > 0) throw errno('ESTALE');
      orig(a, b);
    });
    try {
      assert.equal((await broker.consumeOne('q', { skipCleaning: true }))!.text, 'x');
    } finally {
      restore();
    }
  });

  it('a claim lost to another client is skipped, not an error', async () => {
    const { broker, dir } = await fresh();
    await broker.publish('q', 'first');
    await broker.publish('q', 'second');
    const queue = await brokerInternals(broker).queue('q');
    // List, then let "another client" take the head file before we rename it.
    await broker.consume('q', { n: 1 }); // takes "first", caches "second"
    await broker.publish('q', 'third');
    const second = ls(dir).find((n) => n.includes('.ddmq') && fs.readFileSync(join(dir, n), 'utf8').includes('second'))!;
    fs.renameSync(join(dir, second), join(dir, '..', 'stolen'));
    const lostBefore = queue.lostClaims;
    const got = await broker.consume('q', { n: 1, skipCleaning: true });
    assert.deepEqual(got.map((m) => m.text), ['third']);
    assert.equal(queue.lostClaims, lostBefore + 1);
  });

  it('losing the claims near the end of an old listing lists again within ms, not after a tenth of a second', async () => {
    // A draining queue's tail: the consumer's listing of 200 names is 20 ms old, and other
    // clients took all but the last 3 meanwhile. It loses a few claims, then lists again
    // and takes what is there; walking the taken names it would lose each (196).
    const clock = manualClock();
    const { broker, dir } = await fresh({ now: clock.now });
    await broker.publishMany('q', Array.from({ length: 200 }, (_, i) => i));
    const queue = await brokerInternals(broker).queue('q');
    assert.equal((await broker.consume('q', { skipCleaning: true }))[0]!.message, 0);
    const away = tempDir('ddmq-taken-');
    for (const n of ls(dir).filter((f) => f.includes('.ddmq'))) {
      const i = JSON.parse(fs.readFileSync(join(dir, n), 'utf8')).message as number;
      if (i < 197) fs.renameSync(join(dir, n), join(away, n));
    }
    clock.advance(20);
    const random = Math.random;
    Math.random = () => 0; // no jump ahead: each taken name is tried in turn
    try {
      const got = await broker.consume('q', { n: 3, skipCleaning: true });
      assert.deepEqual(got.map((m) => m.message), [197, 198, 199]);
    } finally {
      Math.random = random;
    }
    assert.ok(queue.lostClaims <= 6, `${queue.lostClaims} claims lost`);
  });

  it('a listing that keeps showing names already gone (a stale cache) ends the consume, not a loop of listings', async () => {
    // sshfs (~20 s) and NFS (acdirmax) may serve a folder's old listing: every name in it was
    // taken through another mount. Each claim is lost; listing again near the end is only
    // worth it after a claim was won from the last listing, else the consume would list
    // and lose in a loop for as long as the cache lasts.
    let t = Date.now();
    const { broker, dir } = await fresh({ now: () => (t += 2) }); // a slow file system: 2 ms a call
    const phantoms = Array.from({ length: 40 }, (_, i) => `999.${String(17961312922415320000 + i * 10000)}.ddmq${'a'.repeat(30)}${String(i).padStart(2, '0')}`);
    let listings = 0;
    const queueDir = fs.realpathSync(dir);
    const restore = patchFs('readdirSync', (orig) => ((path: fs.PathLike, options?: unknown) => {
      // The queue folder, by its name or (DDMQ_PIN_FOLDERS) through /proc/self/fd.
      if (fs.realpathSync(String(path)) !== queueDir) return orig(path, options as never);
      if (++listings > 20) throw new Error('listed the folder 20 times in one consume');
      return phantoms;
    }) as typeof fs.readdirSync);
    try {
      assert.deepEqual(await broker.consume('q', { skipCleaning: true }), []);
    } finally {
      restore();
    }
    assert.ok(listings >= 1 && listings <= 3, `${listings} listings`);
  });

  it('a message file this user may not read is put back for others and left alone for a minute, not an error that stops the consumer', async () => {
    const clock = manualClock();
    const { broker, warnings } = await fresh({ now: clock.now });
    await broker.publish('q', 'unreadable');
    clock.advance(1000);
    await broker.publish('q', 'readable');
    let refused = 0;
    const restore = patchFs('openSync', (orig) => ((path: fs.PathLike, ...rest: unknown[]) => {
      if (parseInFlightName(basename(String(path))) !== null && refused === 0) {
        refused++;
        throw errno('EACCES', `permission denied, open '${String(path)}'`);
      }
      return (orig as (...a: unknown[]) => number)(path, ...rest);
    }) as typeof fs.openSync);
    try {
      assert.deepEqual((await broker.consume('q', { skipCleaning: true })).map((m) => m.text), ['readable']);
    } finally {
      restore();
    }
    assert.equal(refused, 1);
    assert.ok(warnings.some((w) => w.code === 'IO' && w.osCode === 'EACCES' && /put back into the queue/.test(w.message)), warnings.map((w) => w.message).join('\n'));
    assert.equal((await broker.counts('q'))[0]!.ready, 1, 'put back, not lost nor moved aside');
    assert.deepEqual(await broker.consume('q', { skipCleaning: true }), [], 'left alone for a while');
    clock.advance(61_000);
    assert.deepEqual((await broker.consume('q', { skipCleaning: true })).map((m) => m.text), ['unreadable']);
  });

  it('a consume that lost its claims and jumped over names tries those before it says the queue is empty', async () => {
    // A competitor takes the three names this consumer tries first: it jumps over the rest
    // of its listing (ever further: 7, then all that is left). Those names are still ready,
    // taken by no one: the consume must take one, not return [] (`ddmq consume` would exit 3).
    const { broker, dir } = await fresh();
    await broker.publishMany('q', Array.from({ length: 20 }, (_, i) => i));
    const { away, restore } = competitorTakesFirst(3);
    const random = Math.random;
    Math.random = () => 0.99;
    try {
      const got = await broker.consume('q', { skipCleaning: true });
      assert.equal(got.length, 1, 'a message taken, not []');
      assert.equal(got[0]!.message, 1, 'the first of the names it jumped over');
    } finally {
      Math.random = random;
      restore();
    }
    assert.equal(fs.readdirSync(away).length, 3);
  });

  it('a consumer that found its queue empty is back to exact order (no window kept from before)', async () => {
    // Losses (here: a competitor's, or a purge of the names it listed) grew its window; an
    // empty queue has no competitor left for it, so the next messages come in order.
    const { broker, dir } = await fresh();
    await broker.publishMany('q', Array.from({ length: 20 }, (_, i) => i));
    const { restore } = competitorTakesFirst(3);
    const random = Math.random;
    Math.random = () => 0.99;
    try {
      let taken = 0;
      while ((await broker.consume('q', { skipCleaning: true })).length > 0) taken++;
      assert.equal(taken, 17, 'drained: 3 taken by the competitor');
      await broker.publishMany('q', Array.from({ length: 10 }, (_, i) => 100 + i));
      const got = await broker.consume('q', { n: 3, skipCleaning: true });
      assert.deepEqual(got.map((m) => m.message), [100, 101, 102]);
    } finally {
      Math.random = random;
      restore();
    }
  });

  it('a claim lost makes the next listings start at a random point, until 64 claims are won in a row', async () => {
    // A worker back from a task lists again: were the window forgotten at a listing, it would
    // start at the head, where the other workers are. Won claims take it back to exact order.
    const clock = manualClock();
    const { broker, dir } = await fresh({ now: clock.now });
    await broker.publishMany('q', Array.from({ length: 300 }, (_, i) => i));
    const take = async () => (await broker.consume('q', { skipCleaning: true }))[0]!.message as number;
    const relisted = async () => {
      clock.advance(1100); // the listing is older than listingIntervalMs: the next consume lists
      return take();
    };
    const random = Math.random;
    Math.random = () => 0.99;
    try {
      assert.equal(await take(), 0);
      // Another client takes message 1 first: the claim is lost, and the consumer jumps.
      const one = ls(dir).find((n) => n.includes('.ddmq') && JSON.parse(fs.readFileSync(join(dir, n), 'utf8')).message === 1)!;
      fs.renameSync(join(dir, one), join(tempDir('ddmq-taken-'), one));
      assert.equal(await take(), 9, 'lost 1, jumped over 7 of the next 8');
      // A new listing (the skipped 2-8 first) is entered at a random point of the window.
      assert.equal(await relisted(), 9 + 7 + 1 - 7, 'entered 7 names in, not at the head');
      for (let i = 0; i < 61; i++) await take(); // 63 claims won since the loss
      assert.notEqual(await relisted(), 2, 'the 64th: still entered at a random point');
      // The 64th claim won in a row took the streak to 0: the next listing starts at its head.
      assert.equal(await relisted(), 2, 'exact order again');
    } finally {
      Math.random = random;
    }
  });

  it('a queue counts the listings it made to claim from (what the farm harness reports)', async () => {
    const { broker } = await fresh();
    for (let i = 0; i < 5; i++) await broker.publish('q', i);
    const queue = await brokerInternals(broker).queue('q');
    const before = queue.listings;
    assert.equal((await broker.consume('q', { n: 5, skipCleaning: true })).length, 5);
    assert.equal(queue.listings, before + 1, 'one listing for five messages');
    assert.deepEqual(await broker.consume('q', { skipCleaning: true }), []);
    assert.equal(queue.listings, before + 2, 'used up: listed again, and found nothing');
  });
});

describe('ack, nack, extend', () => {
  it('ack deletes the in-flight file; a second ack is NOT_IN_FLIGHT', async () => {
    const { broker, work } = await fresh();
    await broker.publish('q', 'x');
    const m = (await broker.consumeOne('q'))!;
    await broker.ack(m);
    assert.deepEqual(ls(work), []);
    await assert.rejects(broker.ack(m), code('NOT_IN_FLIGHT'));
    await assert.rejects(broker.ack('q', '../../ddmq.yaml'), code('INVALID_NAME'));
    await assert.rejects(broker.ack('q', parseReadyName('1.2.ddmqabc')!.name), code('INVALID_NAME'));
    // @ts-expect-error: the types refuse it; a JavaScript caller gets a clear error
    await assert.rejects(broker.ack('q'), code('INVALID_ARGUMENT'));
  });

  it('nack requeues with requeue_prio, a new queue number, the same id and counter + 1', async () => {
    const { broker, dir, work } = await fresh();
    await broker.setSettings('q', { requeue_prio: 2, retry_delay: 0 });
    const pub = await broker.publish('q', 'x', { extra: { tag: 't' } });
    const m = (await broker.consumeOne('q'))!;
    const r = await broker.nack(m);
    assert.equal(r.action, 'requeued');
    assert.deepEqual(ls(work), []);
    assert.deepEqual(ls(dir), [r.filename!, 'ddmq.yaml', 'work'].sort());
    const again = (await broker.consumeOne('q'))!;
    assert.deepEqual([again.id, again.priority, again.requeueCounter, again.extra.tag], [pub.id, 2, 1, 't']);
    assert.ok(again.queueNumber > pub.queueNumber);
  });

  it('nack: an integer requeue is the priority; false or the queue setting drops; the limit drops', async () => {
    const { broker } = await fresh();
    await broker.setSettings('q', { retry_delay: 0 });
    await broker.publish('q', 'int', { requeuePrio: 9 });
    let m = (await broker.consumeOne('q'))!;
    await broker.nack(m);
    assert.equal((m = (await broker.consumeOne('q'))!).priority, 9);
    await broker.ack(m);

    await broker.publish('q', 'no', { requeue: false });
    assert.equal((await broker.nack((await broker.consumeOne('q'))!)).action, 'dropped');

    await broker.publish('q', 'limited', { requeueLimit: 1 });
    assert.equal((await broker.nack((await broker.consumeOne('q'))!)).action, 'requeued');
    const last = (await broker.consumeOne('q'))!;
    assert.equal(last.requeueCounter, 1);
    assert.equal((await broker.nack(last)).action, 'dropped');
    assert.equal((await broker.counts('q'))[0]!.ready, 0);
  });

  it('nack forced: requeue past the limit, or drop whatever the settings say', async () => {
    const { broker } = await fresh();
    await broker.publish('q', 'x', { requeueLimit: 0 });
    const m = (await broker.consumeOne('q'))!;
    assert.equal((await broker.nack(m, { requeue: true })).action, 'requeued');
    const again = (await broker.consumeOne('q'))!;
    assert.equal((await broker.nack('q', again.filename, { requeue: false })).action, 'dropped');
    await assert.rejects(broker.nack(again), code('NOT_IN_FLIGHT'));
  });

  it('nack by file name reads the message after claiming it', async () => {
    const { broker } = await fresh();
    await broker.setSettings('q', { retry_delay: 0 });
    await broker.publish('q', 'by-name');
    const m = (await broker.consumeOne('q'))!;
    const r = await broker.nack('q', m.filename);
    assert.equal(r.action, 'requeued');
    assert.equal((await broker.consumeOne('q'))!.text, 'by-name');
  });

  it("the folder a message is in is its queue, whatever its file says", async () => {
    const { broker, dir } = await fresh();
    fs.writeFileSync(join(dir, '5.17000000000000000000.ddmq0123456789abcdef0123456789abcdef'), '{"message": "x", "queue": "elsewhere"}');
    const m = (await broker.consumeOne('q'))!;
    assert.equal(m.queue, 'q');
    await broker.ack(m);
  });

  it('a message with requeue null follows the queue setting', async () => {
    const { broker, dir } = await fresh();
    await broker.setSettings('q', { requeue: false });
    fs.writeFileSync(join(dir, '5.17000000000000000000.ddmq0123456789abcdef0123456789abcdef'), '{"message": "x", "requeue": null}');
    assert.equal((await broker.nack((await broker.consumeOne('q'))!)).action, 'dropped');
  });

  it('extend renames to a later expiry; the old name is gone; a lost lease is NOT_IN_FLIGHT', async () => {
    const clock = manualClock();
    const { broker, work } = await fresh({ now: clock.now });
    await broker.publish('q', 'x');
    const m = (await broker.consumeOne('q', { lease: 10 }))!;
    const before = m.filename;
    clock.advance(5000);
    const after = await broker.extend(m, 100);
    assert.equal(m.filename, after);
    assert.deepEqual(ls(work), [after]);
    assert.equal(parseInFlightName(after)!.expiry, Math.floor(clock.now() / 1000) + 100);
    assert.notEqual(parseInFlightName(after)!.token, parseInFlightName(before)!.token);
    await assert.rejects(broker.extend('q', before, 10), code('NOT_IN_FLIGHT'));
    await assert.rejects(broker.extend(m, 0), code('INVALID_ARGUMENT'));
    await broker.ack(m);
    await assert.rejects(broker.extend(m, 10), code('NOT_IN_FLIGHT'));
  });
});

describe('clean', () => {
  it('requeues expired messages once, leaves live leases alone, drops at the limit', async () => {
    const clock = manualClock();
    const { broker, work } = await fresh({ now: clock.now });
    await broker.publish('q', 'short', { lease: 10 });
    await broker.publish('q', 'limited', { lease: 10, requeueLimit: 0 });
    await broker.publish('q', 'long', { lease: 1000 });
    const got = await broker.consume('q', { n: 3 });
    assert.equal(got.length, 3);
    clock.advance(11_000);
    // Within expiry_grace (30 s by default) nothing is taken back yet.
    assert.equal((await broker.counts('q'))[0]!.expired, 0);
    assert.equal((await broker.clean('q'))[0]!.requeued, 0);
    clock.advance(30_000);
    assert.equal((await broker.counts('q'))[0]!.expired, 2);
    const [r] = await broker.clean('q');
    assert.deepEqual([r!.requeued, r!.dropped], [1, 1]);
    assert.deepEqual((await broker.clean('q'))[0]!.requeued, 0);
    assert.equal(ls(work).length, 1);
    const again = (await broker.consumeOne('q', { skipCleaning: true }))!;
    assert.deepEqual([again.text, again.requeueCounter, again.priority], ['short', 1, 0]);
    // The consumer that overran its lease learns it at ack.
    await assert.rejects(broker.ack(got[0]!), code('NOT_IN_FLIGHT'));
  });

  it('expiry_grace: a cleaner whose clock runs ahead within the grace leaves live leases alone', async () => {
    const { root, broker } = await fresh();
    await broker.setSettings('q', { expiry_grace: 30 });
    await broker.publish('q', 'x');
    await broker.consume('q', { lease: 10 });
    const ahead = (seconds: number) => Broker.open(root, { now: () => Date.now() + seconds * 1000 });
    assert.equal((await (await ahead(35)).clean('q'))[0]!.requeued, 0, '10 s lease + 30 s grace not yet over');
    assert.equal((await (await ahead(45)).clean('q'))[0]!.requeued, 1, 'a clock ahead by more than the grace takes it');
    await broker.setSettings('q', { expiry_grace: 0 });
    await broker.consume('q', { lease: 10 });
    assert.equal((await (await ahead(12)).clean('q'))[0]!.requeued, 1);
  });

  it('consume cleans first unless told not to, at most once a cleanIntervalMs', async () => {
    const clock = manualClock();
    const { broker } = await fresh({ now: clock.now, cleanIntervalMs: 60_000 });
    await broker.publish('q', 'x', { lease: 1 });
    await broker.consume('q');
    clock.advance(2000);
    assert.deepEqual(await broker.consume('q', { skipCleaning: true }), []);
    assert.deepEqual(await broker.consume('q'), []); // cleaned less than a minute ago
    clock.advance(60_000);
    assert.equal((await broker.consumeOne('q'))!.text, 'x');
  });

  it('removes temporary files older than the grace period, not fresh ones', async () => {
    const { broker, dir } = await fresh();
    fs.writeFileSync(join(dir, '.tmp-1-old'), 'x');
    setMtime(join(dir, '.tmp-1-old'), 7200_000);
    fs.writeFileSync(join(dir, '.tmp-1-new'), 'x');
    assert.equal((await broker.clean('q'))[0]!.tempsRemoved, 1);
    assert.deepEqual(ls(dir), ['.tmp-1-new', 'ddmq.yaml', 'work']);
    setMtime(join(dir, '.tmp-1-new'), 1000);
    assert.equal((await broker.clean('q', { tempGrace: 0, temps: false }))[0]!.tempsRemoved, 0);
    assert.equal((await broker.clean('q', { tempGrace: 0 }))[0]!.tempsRemoved, 1);
  });

  it('cleans every queue when none is named', async () => {
    const { broker } = await fresh();
    await broker.createQueue('b');
    assert.deepEqual((await broker.clean()).map((r) => r.queue), ['b', 'q']);
  });
});

describe('corrupt message files', () => {
  it('are moved to corrupt/, reported, never deleted, and do not stop the consumer', async () => {
    const { broker, dir, warnings } = await fresh();
    const bad = '5.17000000000000000000.ddmq0123456789abcdef0123456789abcdef';
    fs.writeFileSync(join(dir, bad), 'not json at all');
    setMtime(join(dir, bad), 60_000);
    await broker.publish('q', 'good');
    assert.deepEqual((await broker.consume('q', { n: 5 })).map((m) => m.text), ['good']);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.code, 'CORRUPT_MESSAGE');
    const moved = ls(join(dir, 'corrupt'));
    assert.equal(moved.length, 1);
    assert.equal(fs.readFileSync(join(dir, 'corrupt', moved[0]!), 'utf8'), 'not json at all');
    assert.equal((await broker.counts('q'))[0]!.corrupt, 1);
  });

  it('a fresh file that does not parse (the original writes in place) is put back and taken once whole', async () => {
    const clock = manualClock();
    const { broker, dir, warnings } = await fresh({ now: clock.now });
    const name = '999.17000000000000000000.ddmq0123456789abcdef0123456789abcdef';
    fs.writeFileSync(join(dir, name), '{"message": "half');
    assert.deepEqual(await broker.consume('q'), []);
    assert.ok(ls(dir).includes(name), 'put back under its ready name');
    assert.equal(warnings.length, 0);
    fs.writeFileSync(join(dir, name), '{"message": "whole"}');
    clock.advance(11_000);
    assert.equal((await broker.consumeOne('q'))!.text, 'whole');
  });
});

describe('purge, delete one, counts', () => {
  it('purge deletes ready and in-flight messages and counts them', async () => {
    const { broker, dir } = await fresh();
    for (let i = 0; i < 5; i++) await broker.publish('q', i);
    await broker.consume('q', { n: 2 });
    assert.deepEqual(await broker.purge('q'), { queue: 'q', ready: 3, delayed: 0, inFlight: 2 });
    assert.deepEqual(ls(dir), ['ddmq.yaml', 'work']);
    assert.deepEqual(await broker.consume('q'), []);
  });

  it('deleteMessage takes ready and in-flight names; a missing one is MESSAGE_NOT_FOUND', async () => {
    const { broker } = await fresh();
    const a = await broker.publish('q', 'a');
    await broker.publish('q', 'b');
    await broker.deleteMessage('q', a.filename);
    const b = (await broker.consumeOne('q'))!;
    await broker.deleteMessage('q', b.filename);
    assert.deepEqual((await broker.counts('q'))[0], { queue: 'q', ready: 0, delayed: 0, inFlight: 0, expired: 0, corrupt: 0, nextDue: null });
    await assert.rejects(broker.deleteMessage('q', a.filename), code('MESSAGE_NOT_FOUND'));
    await assert.rejects(broker.deleteMessage('q', `../${a.filename}`), code('INVALID_NAME'));
  });
});

describe('settings files', () => {
  it('setSettings writes atomically; null removes a key; bad values are refused', async () => {
    const { broker, dir } = await fresh();
    await broker.setSettings('q', { message_timeout: 30, custom: 'kept' });
    assert.deepEqual(await broker.readSettingsFile('q'), { message_timeout: 30, custom: 'kept' });
    await broker.setSettings('q', { message_timeout: null });
    assert.deepEqual(await broker.readSettingsFile('q'), { custom: 'kept' });
    await assert.rejects(broker.setSettings('q', { requeue: 'sometimes' }), code('INVALID_SETTING'));
    assert.deepEqual(ls(dir), ['ddmq.yaml', 'work']);
  });

  it('a broken ddmq.yaml is INVALID_SETTING naming the file, on the calls that need it', async () => {
    const { root, dir } = await fresh();
    fs.writeFileSync(join(dir, 'ddmq.yaml'), 'priority: [');
    const broker = await Broker.open(root);
    await assert.rejects(broker.publish('q', 'x'), (e) => code('INVALID_SETTING')(e) && (e as Error).message.includes(join(dir, 'ddmq.yaml')));
    fs.writeFileSync(join(root, 'ddmq.yaml'), 'message_timeout: soon');
    await assert.rejects(Broker.open(root), (e) => code('INVALID_SETTING')(e) && /"message_timeout"/.test((e as Error).message));
  });
});
