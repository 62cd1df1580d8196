/**
 * The lease renewer, on a clock the test moves: one timer for all the leases it holds,
 * renewals every third of a lease, the retry backoff of failed renewals, and losses.
 * Every time asserted here is exact.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, DdmqError, isDdmqError, LeaseRenewer, type Message } from '../src/index.js';
import { FakeTime, settle } from './fake-time.js';
import { tempDir } from './helpers.js';

/** A broker on a fake clock; `failWith(n)` makes renewals fail (n: how many; Infinity: all). */
async function setup() {
  const time = new FakeTime();
  const t0 = time.now();
  const root = join(tempDir(), 'root');
  const warnings: DdmqError[] = [];
  const broker = await Broker.open(root, { create: true, now: time.now, onWarning: (w) => warnings.push(w) });
  await broker.createQueue('q', { expiry_grace: 0 });
  /** When each renewal was tried, in ms since the start. */
  const renewals: number[] = [];
  let failures = 0;
  let error: unknown;
  const extend = broker.extend.bind(broker);
  broker.extend = ((...args: Parameters<Broker['extend']>) => {
    renewals.push(Math.round(time.now() - t0));
    if (failures > 0) {
      failures--;
      return Promise.reject(error);
    }
    return extend(...args);
  }) as Broker['extend'];
  const take = async (text: string, seconds: number): Promise<Message> => {
    await broker.publish('q', text);
    const [m] = await broker.consume('q', { lease: seconds });
    assert.equal(m?.text, text);
    return m!;
  };
  const failWith = (n: number, err: unknown) => {
    failures = n;
    error = err;
  };
  return { root, time, t0, broker, warnings, renewals, take, failWith, renewer: new LeaseRenewer(broker, { timers: time }) };
}

const estale = () => new DdmqError('IO', 'rename failed: stale file handle (ESTALE)', { osCode: 'ESTALE' });

describe('the lease renewer', () => {
  it('renews a 1 s lease every third of a second, and stops when released', async () => {
    const { time, broker, renewals, take, renewer } = await setup();
    const lease = renewer.hold(await take('a', 1), 1);
    await time.advance(1000);
    assert.deepEqual(renewals, [333, 667, 1000]);
    await lease.release();
    await time.advance(5000);
    assert.deepEqual(renewals, [333, 667, 1000], 'nothing renewed after the release');
    assert.equal(time.timers, 0, 'no timer left');
    assert.equal(lease.lost, false);
    broker.close();
  });

  it('holds any number of leases on one timer, each renewed at its own pace', async () => {
    const { time, t0, broker, take, renewer } = await setup();
    const at = new Map<string, number[]>();
    const extend = broker.extend;
    broker.extend = ((m: Message, s: number) => {
      at.set(m.text, [...(at.get(m.text) ?? []), Math.round(time.now() - t0)]);
      return extend(m, s);
    }) as Broker['extend'];
    const one = renewer.hold(await take('one', 1), 1);
    assert.equal(time.timers, 1);
    await time.advance(100);
    const three = renewer.hold(await take('three', 3), 3);
    const two = renewer.hold(await take('two', 2), 2);
    for (let i = 0; i < 30; i++) {
      await time.advance(100);
      assert.equal(time.timers, 1, 'one timer, whatever the number of leases');
    }
    assert.deepEqual(at.get('one'), [333, 667, 1000, 1333, 1667, 2000, 2333, 2667, 3000]);
    assert.deepEqual(at.get('two'), [767, 1433, 2100, 2767]);
    assert.deepEqual(at.get('three'), [1100, 2100, 3100]);
    await one.release();
    await three.release();
    assert.equal(time.timers, 1, 'the timer is kept for the lease still held');
    await two.release();
    assert.equal(time.timers, 0);
    broker.close();
  });

  it('tries a failed renewal again after 100 ms, doubling up to a third of the lease; reports the first failure of a run once', async () => {
    const { time, broker, warnings, renewals, take, failWith, renewer } = await setup();
    failWith(3, estale());
    const lease = renewer.hold(await take('a', 1), 1);
    await time.advance(1400);
    // 333 fails, +100 fails, +200 fails, +333 (not 400: a third of the lease) works, +333.
    assert.deepEqual(renewals, [333, 433, 633, 967, 1300]);
    assert.equal(warnings.length, 1, 'reported once, through the broker when no onWarning is given');
    assert.match(warnings[0]!.message, /renewing the lease of q\/\S+ failed \(rename failed: stale file handle \(ESTALE\)\); trying again until it runs out in 2 s/);
    assert.equal(warnings[0]!.osCode, 'ESTALE');
    failWith(1, estale());
    await time.advance(400);
    assert.equal(warnings.length, 2, 'a new run of failures is reported again');
    assert.equal(lease.lost, false);
    await lease.release();
    broker.close();
  });

  it('renewals that keep failing: the lease is lost exactly when it runs out, once, with a last try at that moment', async () => {
    const { time, broker, renewals, take, failWith, renewer } = await setup();
    failWith(Infinity, new DdmqError('IO', 'rename failed: permission denied (EACCES)', { osCode: 'EACCES' }));
    const lost: DdmqError[] = [];
    const warned: DdmqError[] = [];
    // Taken at 0 with a 1 s lease: its name expires at the end of second 1, 2000 ms on.
    const lease = renewer.hold(await take('a', 1), 1, { onLost: (e) => lost.push(e), onWarning: (e) => warned.push(e) });
    await time.advance(1999);
    assert.equal(lost.length, 0);
    assert.equal(lease.signal.aborted, false);
    await time.advance(1);
    assert.deepEqual(renewals, [333, 433, 633, 967, 1300, 1633, 1967, 2000]);
    assert.equal(lost.length, 1);
    assert.match(lost[0]!.message, /ran out: it could not be renewed .*EACCES/);
    assert.equal(lost[0]!.code, 'NOT_IN_FLIGHT');
    assert.equal(warned.length, 1);
    assert.ok(lease.lost && lease.signal.aborted && lease.signal.reason === lost[0]);
    await time.advance(5000);
    assert.equal(renewals.length, 8, 'nothing tried after the loss');
    assert.equal(time.timers, 0);
    await lease.release();
    broker.close();
  });

  it('NOT_IN_FLIGHT (another client took the message): lost at the next renewal, without retrying', async () => {
    const { root, time, broker, renewals, take, renewer } = await setup();
    const lost: DdmqError[] = [];
    const lease = renewer.hold(await take('a', 1), 1, { onLost: (e) => lost.push(e) });
    // Another client, whose clock is a minute ahead, cleans the message and takes it.
    const other = await Broker.open(root, { now: () => time.now() + 60_000 });
    assert.equal((await other.clean('q'))[0]!.requeued, 1);
    await time.advance(1000);
    assert.deepEqual(renewals, [333]);
    assert.equal(lost.length, 1);
    assert.ok(isDdmqError(lost[0], 'NOT_IN_FLIGHT'));
    assert.ok(lease.lost);
    broker.close();
  });

  it('release() waits for a renewal under way; a loss that renewal finds is still reported', async () => {
    const { time, broker, take, renewer } = await setup();
    let reject: (e: unknown) => void = () => {};
    broker.extend = (() => new Promise((_resolve, rej) => (reject = rej))) as Broker['extend'];
    const lost: DdmqError[] = [];
    const lease = renewer.hold(await take('a', 1), 1, { onLost: (e) => lost.push(e) });
    await time.advance(333.34);
    let released = false;
    const release = lease.release().then(() => (released = true));
    await settle();
    assert.equal(released, false, 'waits for the renewal under way');
    reject(new DdmqError('NOT_IN_FLIGHT', 'gone'));
    await release;
    assert.equal(lost.length, 1);
    assert.ok(lease.lost);
    broker.close();
  });

  it('what a hook throws is not lost: release() rejects with it', async () => {
    const { time, broker, take, failWith, renewer } = await setup();
    failWith(1, estale());
    const lease = renewer.hold(await take('a', 1), 1, {
      onWarning: () => {
        throw new Error('from the hook');
      },
    });
    await time.advance(400);
    await assert.rejects(lease.release(), /from the hook/);
    broker.close();
  });

  it('refuses what it cannot hold: a bad lease, a message not in flight, one held already; and anything once closed', async () => {
    const { broker, take, renewer } = await setup();
    const m = await take('a', 5);
    const later = await take('b', 5);
    for (const bad of [0, 1.5, -1, NaN]) {
      assert.throws(() => renewer.hold(m, bad), (e) => isDdmqError(e, 'INVALID_ARGUMENT') && /invalid lease/.test(e.message), String(bad));
    }
    const ready = await broker.publish('q', 'not taken');
    assert.throws(() => renewer.hold(ready, 5), (e) => isDdmqError(e, 'INVALID_ARGUMENT') && /not in flight/.test(e.message));
    renewer.hold(m, 5);
    assert.throws(() => renewer.hold(m, 5), (e) => isDdmqError(e, 'INVALID_ARGUMENT') && /held already/.test(e.message));
    await renewer.close();
    assert.equal(renewer.size, 0);
    assert.throws(() => renewer.hold(later, 5), (e) => isDdmqError(e, 'INVALID_ARGUMENT') && /closed/.test(e.message));
    broker.close();
  });
});
