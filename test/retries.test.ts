/**
 * Retries that do not starve the queue: a failed message waits out an exponential
 * backoff in delayed/ before it is ready again; expired leases (a dead consumer) and
 * released messages (a stopping worker) return at once; the queue's requeue_limit applies
 * to messages that set none; what is not requeued goes to the dead-letter queue.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, isDdmqError } from '../src/index.js';
import { parseInFlightName } from '../src/internals.js';
import { retryDelay } from '../src/store/requeue.js';
import { DEFAULT_SETTINGS } from '../src/format/settings.js';
import { ls, manualClock, tempDir } from './helpers.js';

async function setup(settings: Record<string, unknown> = {}) {
  const root = join(tempDir(), 'root');
  const clock = manualClock(Date.UTC(2026, 0, 1));
  const broker = await Broker.open(root, { create: true, now: clock.now, settingsTtlMs: 0 });
  await broker.createQueue('q', settings);
  return { root, broker, clock, dir: join(root, 'q') };
}

describe('retry backoff', () => {
  it('retryDelay grows by the factor from the first delay up to the cap', () => {
    const s = { ...DEFAULT_SETTINGS, retry_delay: 10, retry_backoff: 2, retry_delay_max: 600 };
    assert.deepEqual([0, 1, 2, 3, 5, 6, 50, 5000].map((n) => retryDelay(s, n)), [10, 20, 40, 80, 320, 600, 600, 600]);
    assert.equal(retryDelay({ ...s, retry_delay: 0 }, 3), 0, '0: at once');
    assert.equal(retryDelay({ ...s, retry_backoff: 1 }, 9), 10, 'a factor of 1: the same wait each time');
  });

  it('a failed message waits in delayed/ for its backoff, then is served again; other messages are served meanwhile', async () => {
    const { broker, clock, dir } = await setup({ retry_delay: 10, retry_backoff: 3, retry_delay_max: 60 });
    await broker.publish('q', 'flaky', { priority: 1 });
    await broker.publish('q', 'other');
    const expectWait = async (seconds: number, counter: number) => {
      const m = (await broker.consumeOne('q'))!;
      assert.equal(m.text, 'flaky');
      const r = await broker.nack(m, { error: `failure ${counter}` });
      assert.equal(r.action, 'requeued');
      const now = Math.floor(clock.now() / 1000);
      assert.equal(r.due, now + seconds, `wait ${seconds} s after failure ${counter}`);
      const [delayed] = ls(join(dir, 'delayed'));
      assert.equal(parseInFlightName(delayed!)!.expiry, r.due);
      assert.equal((await broker.counts('q'))[0]!.nextDue, r.due);
      // Not before it is due...
      clock.advance((seconds - 1) * 1000);
      const early = await broker.consumeOne('q');
      assert.notEqual(early?.text, 'flaky');
      if (early) await broker.ack(early);
      // ...and at once after.
      clock.advance(2000);
    };
    await expectWait(10, 1);
    await expectWait(30, 2);
    await expectWait(60, 3); // 90, capped
    const back = (await broker.consumeOne('q'))!;
    assert.deepEqual([back.text, back.requeueCounter, back.extra.last_error], ['flaky', 3, 'failure 3']);
    broker.close();
  });

  it('with pinned folders too, a failure makes delayed/ when it is missing and waits there', async () => {
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true, pinFolders: true });
    await broker.createQueue('q', { retry_delay: 30 });
    await broker.publish('q', 'x');
    const r = await broker.nack((await broker.consumeOne('q'))!);
    assert.equal(r.action, 'requeued');
    assert.deepEqual(ls(join(root, 'q', 'delayed')).map((f) => parseInFlightName(f)!.expiry), [r.due]);
    broker.close();
  });

  it('expired leases come back at once, at requeue_prio; forced requeues and releases at once too', async () => {
    const { broker, clock } = await setup({ retry_delay: 100, expiry_grace: 0, requeue_prio: 3 });
    await broker.publish('q', 'abandoned', { lease: 5 });
    await broker.consumeOne('q');
    clock.advance(7000);
    assert.equal((await broker.clean('q'))[0]!.requeued, 1);
    const again = (await broker.consumeOne('q', { skipCleaning: true }))!;
    assert.deepEqual([again.text, again.priority, again.requeueCounter], ['abandoned', 3, 1]);

    const forced = await broker.nack(again, { requeue: true });
    assert.equal(forced.due, undefined);
    const third = (await broker.consumeOne('q'))!;
    assert.equal(third.requeueCounter, 2);

    const released = await broker.release(third);
    assert.deepEqual([released.action, released.due], ['requeued', undefined]);
    const fourth = (await broker.consumeOne('q'))!;
    assert.deepEqual([fourth.text, fourth.priority, fourth.requeueCounter], ['abandoned', 3, 2], 'a release is not an attempt');
    await assert.rejects(broker.release(third), (e) => isDdmqError(e, 'NOT_IN_FLIGHT'));
    broker.close();
  });

  it('release requeues whatever the requeue setting and the limit say, by message or by file name', async () => {
    const { broker } = await setup({ retry_delay: 0 });
    await broker.publish('q', 'no requeue', { requeue: false, requeueLimit: 0 });
    const m = (await broker.consumeOne('q'))!;
    await broker.release('q', m.filename);
    const back = (await broker.consumeOne('q'))!;
    assert.deepEqual([back.text, back.requeueCounter], ['no requeue', 0]);
    assert.equal((await broker.nack(back)).action, 'dropped', 'a failure still drops it');
    broker.close();
  });
});

describe('requeue_limit and dead letters', () => {
  it('the queue setting requeue_limit applies to messages without a limit of their own', async () => {
    const { broker } = await setup({ retry_delay: 0, requeue_limit: 2 });
    await broker.publish('q', 'queue limit');
    await broker.publish('q', 'own limit', { requeueLimit: 3, priority: 5 });
    const runs: Record<string, number> = {};
    for (let m = await broker.consumeOne('q'); m; m = await broker.consumeOne('q')) {
      runs[m.text] = (runs[m.text] ?? 0) + 1;
      await broker.nack(m);
    }
    // A limit of N allows N requeues: N + 1 runs in all.
    assert.deepEqual(runs, { 'queue limit': 3, 'own limit': 4 });
    broker.close();
  });

  it('requeue_limit is checked as a setting: a count or null', async () => {
    const { broker } = await setup();
    for (const bad of [-1, 1.5, 'x', true]) {
      await assert.rejects(broker.setSettings('q', { requeue_limit: bad }), (e) => isDdmqError(e, 'INVALID_SETTING'));
    }
    await broker.setSettings('q', { requeue_limit: null });
    await broker.setSettings('q', { requeue_limit: 0 });
    assert.equal((await broker.settings('q')).requeue_limit, 0);
    for (const [key, bad] of [['retry_delay', -1], ['retry_backoff', 0.5], ['retry_backoff', 1000], ['retry_delay_max', 1.5], ['message_timeout', 2 ** 40]] as const) {
      await assert.rejects(broker.setSettings('q', { [key]: bad }), (e) => isDdmqError(e, 'INVALID_SETTING'), `${key}: ${bad}`);
    }
  });

  it('a message that is not to be requeued (requeue off, or past its limit) goes to the dead-letter queue', async () => {
    const { broker } = await setup({ retry_delay: 0, dead_letter: 'dead' });
    await broker.publish('q', 'off', { requeue: false });
    await broker.publish('q', 'limited', { requeueLimit: 1 });
    const reasons: Record<string, unknown> = {};
    for (let m = await broker.consumeOne('q'); m; m = await broker.consumeOne('q')) {
      const r = await broker.nack(m);
      if (r.action === 'dead-lettered') {
        assert.equal(r.queue, 'dead');
        const dead = (await broker.peek('dead', { states: ['ready'] })).find((p) => p.filename === r.filename)!;
        reasons[m.text] = (dead.message!.extra.dead_letter as { reason: string }).reason;
      }
    }
    assert.deepEqual(reasons, { off: 'requeue is off', limited: 'requeue limit reached' });
    // An explicit drop is a drop.
    await broker.publish('q', 'dropped');
    assert.equal((await broker.nack((await broker.consumeOne('q'))!, { requeue: false })).action, 'dropped');
    assert.equal((await broker.counts('dead'))[0]!.ready, 2);
    broker.close();
  });

  it("the queue the root's file names as dead_letter drops its own dead letters, and says so once", async () => {
    const root = join(tempDir(), 'root');
    const warnings: string[] = [];
    const broker = await Broker.open(root, { create: true, settingsTtlMs: 0, onWarning: (w) => warnings.push(w.message) });
    await broker.createQueue('dead', { retry_delay: 0 });
    await broker.setSettings(undefined, { dead_letter: 'dead' });
    for (const text of ['one', 'two']) await broker.publish('dead', text, { requeue: false });
    for (let m = await broker.consumeOne('dead'); m; m = await broker.consumeOne('dead')) {
      assert.equal((await broker.nack(m)).action, 'dropped');
    }
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /queue dead is the root's dead_letter queue, so its own dead letters are dropped/);
    // Its own file can say where they go instead.
    await broker.setSettings('dead', { dead_letter: 'graveyard' });
    await broker.publish('dead', 'three', { requeue: false });
    assert.equal((await broker.nack((await broker.consumeOne('dead'))!)).action, 'dead-lettered');
    assert.equal(warnings.length, 1);
    broker.close();
  });
});

describe('files the original tool reads the same way', () => {
  it('never writes requeue_limit: 0 or requeue: 0, whose meanings differ there; reads back the same meaning', async () => {
    const { broker, dir } = await setup({ retry_delay: 0, requeue_prio: 7 });
    const limit0 = await broker.publish('q', 'limit 0', { requeueLimit: 0, priority: 1 });
    const prio0 = await broker.publish('q', 'prio 0', { requeuePrio: 0, priority: 2 });
    const onDisk = (name: string) => JSON.parse(fs.readFileSync(join(dir, name), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([onDisk(limit0.filename).requeue, onDisk(limit0.filename).requeue_limit], [false, null]);
    assert.deepEqual([onDisk(prio0.filename).requeue, onDisk(prio0.filename).requeue_priority], [true, 0]);
    const a = (await broker.consumeOne('q'))!;
    assert.equal((await broker.nack(a)).action, 'dropped');
    const b = (await broker.consumeOne('q'))!;
    assert.equal(b.requeue, 0, 'read back as a requeue priority of 0');
    assert.equal('requeue_priority' in b.extra, false);
    await broker.nack(b);
    const again = (await broker.consumeOne('q'))!;
    assert.deepEqual([again.text, again.priority], ['prio 0', 0], 'requeued at its own priority 0, not the queue setting 7');
    broker.close();
  });
});

describe('delayed/ and the original tool', () => {
  it('clean removes delayed/ once nothing waits there; a writer that loses that race makes it again', async () => {
    const { broker, clock, dir } = await setup({ retry_delay: 5 });
    await broker.publish('q', 'x');
    await broker.nack((await broker.consumeOne('q'))!);
    await broker.clean('q');
    assert.ok(fs.existsSync(join(dir, 'delayed')), 'kept while a message waits in it');
    clock.advance(6000);
    await broker.clean('q');
    assert.equal(fs.existsSync(join(dir, 'delayed')), false, 'removed once empty');
    fs.mkdirSync(join(dir, 'delayed'));
    // The folder vanishes between a writer's mkdir and its write: the writer makes it again.
    // (The writer may reach delayed/ through a pinned /proc path: compare real paths.)
    const delayedDir = fs.realpathSync(join(dir, 'delayed'));
    const isDelayedTemp = (path: string) => {
      if (!basename(path).startsWith('.tmp-')) return false;
      try {
        return fs.realpathSync(dirname(path)) === delayedDir;
      } catch {
        return false;
      }
    };
    const { patchFs } = await import('./helpers.js');
    let removed = false;
    // The writer makes its temporary file with openSync or writeFileSync: the folder goes first.
    const removeFirst = <F extends (...a: never[]) => unknown>(original: F) =>
      ((path: unknown, ...rest: unknown[]) => {
        if (!removed && isDelayedTemp(String(path))) {
          removed = true;
          fs.rmdirSync(join(dir, 'delayed'));
        }
        return (original as unknown as (...a: unknown[]) => unknown)(path, ...rest);
      }) as unknown as F;
    const restore = patchFs('openSync', removeFirst);
    const restoreWrite = patchFs('writeFileSync', removeFirst);
    try {
      await broker.publish('q', 'later', { delay: 60 });
    } finally {
      restore();
      restoreWrite();
    }
    assert.ok(removed, 'the race was staged');
    assert.equal(ls(join(dir, 'delayed')).length, 1);
    broker.close();
  });
});
